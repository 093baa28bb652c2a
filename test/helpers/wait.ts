/** Polling until something happens, for tests that watch real processes and servers. */

export interface WaitOptions {
  timeoutMs?: number;
  /** Between looks. Default 100 ms. */
  intervalMs?: number;
  /** More to say when it times out (e.g. the end of a daemon's output). */
  context?: () => string;
}

/**
 * Resolves with the first value of `look` that is not undefined or false; rejects with `what` once `timeoutMs`
 * has passed (default 60 s).
 */
export async function waitFor<T>(what: string, look: () => T | undefined | false | Promise<T | undefined | false>, opts: WaitOptions = {}): Promise<T> {
  const end = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    const v = await look();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${opts.timeoutMs ?? 60_000} ms waiting for ${what}${opts.context ? `\n${opts.context()}` : ''}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
