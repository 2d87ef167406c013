/**
 * A client-node informer that keeps going. After any watch error but 410 (which it handles by
 * listing again) client-node's informer reports the error and stops; this starts it again after
 * a backoff that doubles per failure (1 s to 30 s by default) and starts afresh once a watch has
 * stayed up for a while.
 */
import type { Informer, KubernetesObject, ObjectCache } from "@kubernetes/client-node";
import type { Logger } from "@trainfleet/runtime";

export interface InformerBackoff {
  initialMs: number;
  maxMs: number;
}

export const defaultInformerBackoff: InformerBackoff = { initialMs: 1000, maxMs: 30_000 };

export class RestartingInformer<T extends KubernetesObject> {
  #delayMs: number;
  #startedAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Restarts after errors so far: the operator's tests and logs read it. */
  restarts = 0;

  constructor(
    readonly name: string,
    readonly informer: Informer<T> & ObjectCache<T>,
    private readonly logger: Logger,
    private readonly backoff: InformerBackoff,
    /** Called after each restart: whatever happened while it was down is looked at again. */
    private readonly onRestart: () => void,
  ) {
    this.#delayMs = backoff.initialMs;
    informer.on("error", (error: unknown) => this.#failed(error));
  }

  async start(): Promise<void> {
    this.#startedAt = Date.now();
    await this.informer.start();
  }

  #failed(error: unknown): void {
    // client-node 1.4.0 reports its own stop() as an AbortError.
    if (this.#stopped) return;
    if (Date.now() - this.#startedAt > 4 * this.backoff.maxMs) this.#delayMs = this.backoff.initialMs;
    const delayMs = this.#delayMs;
    this.#delayMs = Math.min(this.backoff.maxMs, this.#delayMs * 2);
    this.logger.warn(
      { informer: this.name, error: error instanceof Error ? error.message : String(error), retryInMs: delayMs },
      "watch failed; starting it again after a backoff",
    );
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.restarts++;
      this.start()
        .then(() => this.onRestart())
        .catch((startError: unknown) => this.#failed(startError));
    }, delayMs);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.informer.stop();
  }
}
