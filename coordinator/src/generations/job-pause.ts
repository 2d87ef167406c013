/**
 * A started job's pauses: below workers.minWorkers (reason NotEnoughWorkers), or while a
 * parameter-server shard is missing (ShardLost). A pause has a deadline, set when it
 * begins and kept while it lasts (a pause for another cause does not move it); past it the
 * job fails with reason PauseTimeout (pauseTimeout, checked with the leases). The messages
 * say what the job waits for and until when. The generation cycle decides when to pause
 * and when the pause is over.
 */

import type { JobSpec } from "@trainfleet/proto";
import { JobPhase } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import type { JobLifecycle } from "../job/job-lifecycle.js";

type WorkersSpec = NonNullable<JobSpec["workers"]>;

export class JobPause {
  /** While paused: when the job fails. */
  #deadline = 0;

  constructor(
    private readonly lifecycle: JobLifecycle,
    private readonly workers: WorkersSpec,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  /** When the job fails if the pause goes on; 0 when not paused. */
  get deadline(): number {
    return this.#deadline;
  }

  /** Fewer than min_workers (`workers` are left): no steps until enough are in. */
  forWorkers(why: string, workers: number): void {
    const deadline = this.#begin();
    const { minWorkers } = this.workers;
    const message = `${why}: ${workers} worker${workers === 1 ? "" : "s"}, fewer than workers.minWorkers (${minWorkers}); waiting for more until ${deadline}, then the job fails`;
    this.#enter("NotEnoughWorkers", message);
    this.logger.warn({ workers, minWorkers, deadline }, message);
  }

  /** Shards `missing` are gone: paused until each has a successor, then back to checkpoint `last` (or step 0). */
  forShards(why: string, missing: readonly number[], last: { version: number } | undefined): void {
    const deadline = this.#begin();
    const back = last === undefined ? "step 0 (there is no checkpoint yet)" : `its checkpoint of step ${last.version}`;
    const message = `${why}; waiting for parameter-server shard${missing.length === 1 ? "" : "s"} ${missing.join(", ")} to register again (trainfleet ps --shard-index N), then the job goes back to ${back}; it fails at ${deadline}`;
    this.#enter("ShardLost", message);
    this.logger.warn({ missing, deadline }, message);
  }

  /** A generation opened: the job is no longer paused. */
  lifted(): void {
    this.#deadline = 0;
  }

  /** Sets the deadline when a pause begins (a pause that goes on keeps its own); returns it for messages. */
  #begin(): string {
    if (this.lifecycle.phase !== JobPhase.PAUSED) this.#deadline = this.now() + this.workers.pauseTimeoutSeconds * 1000;
    return new Date(this.#deadline).toISOString();
  }

  #enter(reason: string, message: string): void {
    if (this.lifecycle.phase === JobPhase.PAUSED) this.lifecycle.setReason(reason, message);
    else this.lifecycle.apply("pause", reason, message);
  }
}

/** Where the job stands, as pauseTimeout reads it. */
export interface PauseState {
  phase: JobPhase;
  reason: string;
  message: string;
  /** The pause's deadline (JobPause.deadline). */
  deadline: number;
}

/** The message the job fails with (reason PauseTimeout) when it is paused past its deadline at `now`; undefined otherwise. */
export function pauseTimeout(
  state: PauseState,
  now: number,
  workers: Pick<WorkersSpec, "minWorkers" | "pauseTimeoutSeconds">,
): string | undefined {
  if (state.phase !== JobPhase.PAUSED || now <= state.deadline) return undefined;
  const what =
    state.reason === "ShardLost"
      ? "a lost parameter-server shard did not come back"
      : `fewer than ${workers.minWorkers} workers (workers.minWorkers)`;
  return `${what} for ${workers.pauseTimeoutSeconds} s (workers.pauseTimeoutSeconds): ${state.message}`;
}
