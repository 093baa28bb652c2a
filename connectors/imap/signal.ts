/** Wakes the connector loop early (new mail, a correction to carry out) without losing a call made before it waits. */
export class Signal {
  private pending = false;
  private waiter: (() => void) | undefined;
  notify(): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w();
    } else {
      this.pending = true;
    }
  }
  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.waiter = undefined; resolve(); }, ms);
      this.waiter = () => { clearTimeout(t); resolve(); };
    });
  }
  clear(): void { this.pending = false; }
}
