/**
 * Where a coordinator keeps its CoordinatorState: a local file (fileStateStore) or NATS
 * JetStream KV (natsStateStore). The coordinator saves before every generation change
 * and when the job ends, and loads once when it starts.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { CoordinatorState } from "./coordinator-state.js";
import { coordinatorStateJson, parseCoordinatorState } from "./coordinator-state.js";

export interface StateStore {
  /** What and where, for logs and errors: "file /path/state.json" or "NATS KV trainfleet_coordinators/<jobId> at nats://...". */
  readonly description: string;
  /** The saved state, or undefined when none was saved. */
  load(): Promise<CoordinatorState | undefined>;
  /** Saves atomically (a crash leaves the old or the new record, never a mix); resolves once durable. Saves land in call order. */
  save(state: CoordinatorState): Promise<void>;
  /** Waits for saves in flight, then releases the store; later calls fail. */
  close(): Promise<void>;
}

/**
 * The record's bytes, after reading them back: a state that could not be loaded (say a
 * spec that fails validation) is refused when saved, not found out at the restart.
 */
export function encodeState(state: CoordinatorState, where: string, jobId?: string): Uint8Array {
  const text = coordinatorStateJson(state);
  parseCoordinatorState(text, where, jobId);
  return new TextEncoder().encode(text);
}

/**
 * Runs tasks one after another, in call order, so that an earlier save can never land
 * after a later one; a failed task does not stop the next. `close()` waits for the queue
 * and refuses new tasks.
 */
export class SerialTasks {
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(private readonly description: string) {}

  run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new TrainfleetError(Code.FAILED_PRECONDITION, `${this.description} is closed`));
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => {});
    return result;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#tail;
  }
}
