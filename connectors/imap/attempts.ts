/**
 * Retry accounting for one message's (or correction's) work. A failure is retried on later rounds; after
 * maxAttempts it is given up, so one poisonous message cannot stall the mailbox. A lost connection (or a stop)
 * is rethrown to the reconnect loop: nothing is counted against the message then.
 */
import type { Logger } from 'pino';
import { describeError } from './account.ts';

export type Outcome = 'done' | 'retry' | 'gave-up';

export class Attempts {
  private readonly failures = new Map<string, number>();
  /** Something failed this round: the loop looks again soon rather than after the full poll interval. */
  retrySoon = false;

  constructor(
    private readonly maxAttempts: number,
    private readonly log: Logger,
    /** True when the connection is gone or the connector is stopping. */
    private readonly interrupted: () => boolean,
  ) {}

  async run(what: string, work: () => Promise<void>): Promise<Outcome> {
    try {
      await work();
      this.failures.delete(what);
      return 'done';
    } catch (err) {
      if (this.interrupted()) throw err;
      const n = (this.failures.get(what) ?? 0) + 1;
      this.failures.set(what, n);
      if (n >= this.maxAttempts) {
        this.log.error({ item: what, attempts: n, error: describeError(err) }, 'giving up: left where it is');
        this.failures.delete(what);
        return 'gave-up';
      }
      this.log.warn({ item: what, attempt: n, error: describeError(err) }, 'processing failed; will retry');
      this.retrySoon = true;
      return 'retry';
    }
  }
}
