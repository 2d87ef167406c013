/** A revision counter that long-lived readers (status watchers) can wait on. */
export class ChangeNotifier {
  #revision = 0;
  #waiters: Array<() => void> = [];

  get revision(): number {
    return this.#revision;
  }

  changed(): void {
    this.#revision++;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves when the revision is past `revision`, or on abort; the listener is removed either way. */
  after(revision: number, signal: AbortSignal): Promise<void> {
    if (this.#revision !== revision || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        signal.removeEventListener("abort", wake);
        this.#waiters = this.#waiters.filter((w) => w !== wake);
        resolve();
      };
      this.#waiters.push(wake);
      signal.addEventListener("abort", wake, { once: true });
    });
  }
}
