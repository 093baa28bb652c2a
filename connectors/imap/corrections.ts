/**
 * The queue of corrections from the daemon still to carry out on the server, persisted under `corrections` so a
 * stop or a lost connection only delays one. The latest correction of a message wins; whoever handed one in can
 * wait until it was carried out (or given up).
 */
import type { Logger } from 'pino';
import { describeError } from './account.ts';
import type { Attempts } from './attempts.ts';
import type { PendingCorrection } from './records.ts';
import type { ImapState } from './state.ts';

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

export class CorrectionQueue {
  /** By daemon message id (the latest one wins). */
  private readonly pending = new Map<number, PendingCorrection>();
  private loaded: Promise<void> | undefined;
  private writing: Promise<void> = Promise.resolve();
  private readonly waiters = new Map<number, Waiter[]>();

  constructor(private readonly d: { state: ImapState; log: Logger; account: string }) {}

  /** Reads the saved queue (once; again after a failed read). */
  load(): Promise<void> {
    this.loaded ??= (async () => {
      for (const p of await this.d.state.corrections()) {
        if (!this.pending.has(p.messageId)) this.pending.set(p.messageId, p);
      }
      if (this.pending.size) this.d.log.info({ corrections: this.pending.size }, 'corrections from before the restart still to apply');
    })().catch((err: unknown) => {
      this.loaded = undefined; // try again next time
      throw err;
    });
    return this.loaded;
  }

  /** Queues a correction and saves the queue before resolving. */
  async add(p: PendingCorrection): Promise<void> {
    await this.load();
    this.pending.set(p.messageId, p);
    await this.persist();
  }

  /** Resolves when the correction of `messageId` was carried out; rejects when it was given up. */
  done(messageId: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const list = this.waiters.get(messageId) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(messageId, list);
    });
  }

  /**
   * Carries out each queued correction with `apply` (retried through `attempts`) while `canGoOn`; one done or
   * given up leaves the queue, unless a newer correction of the same message came in meanwhile.
   */
  async drain(apply: (p: PendingCorrection) => Promise<void>, attempts: Attempts, canGoOn: () => boolean): Promise<void> {
    for (const p of [...this.pending.values()]) {
      if (!canGoOn()) return;
      let failure: Error | undefined;
      const outcome = await attempts.run(`correction:${p.messageId}`, async () => {
        try {
          await apply(p);
        } catch (err) {
          failure = err instanceof Error ? err : new Error(String(err));
          throw err;
        }
      });
      if (outcome === 'retry') continue;
      // A newer correction of the same message came in meanwhile: that one is still to do.
      if (this.pending.get(p.messageId) !== p) continue;
      this.pending.delete(p.messageId);
      await this.persist();
      const list = this.waiters.get(p.messageId) ?? [];
      this.waiters.delete(p.messageId);
      for (const w of list) {
        if (outcome === 'done') w.resolve();
        else w.reject(new Error(`IMAP ${this.d.account}: giving up on the correction of message ${p.messageId}: ${describeError(failure)}`));
      }
    }
  }

  /** Lets everyone waiting go (the connector stopped; the corrections stay saved for the next start). */
  releaseWaiters(): void {
    for (const [id, list] of this.waiters) {
      this.waiters.delete(id);
      for (const w of list) w.resolve();
    }
  }

  /** Writes the queue; writes are chained so the last one written is the latest list. */
  private persist(): Promise<void> {
    const write = this.writing.then(() => this.d.state.saveCorrections([...this.pending.values()]));
    this.writing = write.catch(() => {});
    return write;
  }
}
