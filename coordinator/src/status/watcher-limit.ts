/**
 * How many event streams (GET /v1/jobs/{id}/watch) the status server holds open at once.
 * Each costs a socket and a place in every change's fan-out; past `max`, a new one is
 * refused (503 with Retry-After) instead of slowing every reader down. It also counts the
 * streams refused and the ones dropped for not reading (status-event-stream.ts), for
 * /metrics.
 */
export class WatcherLimit {
  readonly max: number;
  #active = 0;
  #refused = 0;
  #dropped = 0;

  constructor(max: number) {
    this.max = max;
  }

  get active(): number {
    return this.#active;
  }

  get refused(): number {
    return this.#refused;
  }

  get dropped(): number {
    return this.#dropped;
  }

  /** A place for one more stream, with its release (safe to call twice); undefined when all are taken. */
  acquire(): (() => void) | undefined {
    if (this.#active >= this.max) {
      this.#refused++;
      return undefined;
    }
    this.#active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#active--;
    };
  }

  /** A stream was cut for not taking its events. */
  droppedOne(): void {
    this.#dropped++;
  }
}
