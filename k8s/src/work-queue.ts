/**
 * Keys to reconcile (namespace/name), as a controller's work queue: a key queued several times
 * before it runs runs once; a key is never reconciled twice at once (a change that arrives while
 * it runs queues it again); `addAfter` looks again later (the earliest request wins).
 */
export class WorkQueue {
  readonly #queued = new Set<string>();
  readonly #running = new Map<string, Promise<void>>();
  readonly #again = new Set<string>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  #stopped = false;

  constructor(private readonly handle: (key: string) => Promise<void>) {}

  /** Keys waiting to run (not those waiting for a delay): the operator's work queue depth metric. */
  get depth(): number {
    return this.#queued.size + this.#again.size;
  }

  add(key: string): void {
    if (this.#stopped) return;
    if (this.#running.has(key)) {
      this.#again.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    setImmediate(() => this.#run(key));
  }

  addAfter(key: string, delayMs: number): void {
    if (this.#stopped) return;
    const at = Date.now() + delayMs;
    const existing = this.#timers.get(key);
    if (existing !== undefined && existing.at <= at) return;
    if (existing !== undefined) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delayMs);
    this.#timers.set(key, { at, timer });
  }

  #run(key: string): void {
    this.#queued.delete(key);
    if (this.#stopped) return;
    const running = this.handle(key).finally(() => {
      this.#running.delete(key);
      if (this.#again.delete(key)) this.add(key);
    });
    this.#running.set(key, running);
  }

  /** Stops taking keys and waits for the reconciles in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    await Promise.allSettled([...this.#running.values()]);
  }
}
