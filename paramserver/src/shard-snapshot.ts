/**
 * A shard's state at one version, copied out for a checkpoint, and the schedule that says
 * at which versions to take one: every `everySteps` versions (as the coordinator expects,
 * see coordinator/src/checkpoint-tracker.ts) and whenever the coordinator asks.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { Range } from "@trainfleet/proto";
import { optimizerStateArrays } from "./optimizer.js";
import type { OptimizerKind } from "./optimizer.js";

export interface ShardSnapshot {
  jobId: string;
  /** The parameter version: the number of steps applied. Adam's next update is number version + 1. */
  version: number;
  /** Element offsets into the flattened parameters. */
  range: Range;
  optimizer: OptimizerKind;
  /** The slice's parameters at `version`. */
  parameters: Float32Array;
  /** The optimizer's state at `version`, in Optimizer.state() order (optimizerStateArrays[optimizer] arrays). */
  state: Float32Array[];
}

/** What keeps `snapshot` from being restored into a shard of `expected`: one phrase per difference. */
export function snapshotMismatches(snapshot: ShardSnapshot, expected: { jobId: string; range: Range; optimizer: OptimizerKind }): string[] {
  const { jobId, range, optimizer } = expected;
  const size = range.end - range.begin;
  return [
    snapshot.jobId !== jobId && `job "${snapshot.jobId}", not "${jobId}"`,
    (snapshot.range.begin !== range.begin || snapshot.range.end !== range.end) && `range [${snapshot.range.begin}, ${snapshot.range.end}), not [${range.begin}, ${range.end})`,
    snapshot.optimizer !== optimizer && `optimizer ${snapshot.optimizer}, not ${optimizer}`,
    (snapshot.parameters.length !== size || snapshot.state.length !== optimizerStateArrays[snapshot.optimizer] || snapshot.state.some((s) => s.length !== size)) && `arrays of the wrong size for ${size} elements`,
  ].filter((problem): problem is string => problem !== false);
}

export class SnapshotSchedule {
  #everySteps = 0;
  /** Periodic snapshots start after this version (the one the shard started or resumed at). */
  #after = 0;
  #requested = new Set<number>();
  #last = -1;

  /** `everySteps` 0: only on request. */
  constructor(everySteps = 0, startVersion = 0) {
    this.#everySteps = everySteps;
    this.#after = startVersion;
  }

  /**
   * The coordinator asks for a snapshot at `version`; the shard is at `current`. True when
   * it is to be taken now; false when it will be due once the shard gets there (or was
   * taken already).
   */
  request(version: number, current: number): boolean {
    if (version < current) {
      throw new TrainfleetError(Code.FAILED_PRECONDITION, `version: a checkpoint of version ${version} was asked for, but this shard is at version ${current} already`, { field: "version" });
    }
    if (version === current) return this.#last !== version;
    this.#requested.add(version);
    return false;
  }

  /** Whether reaching `version` takes a snapshot; records it as taken. */
  due(version: number): boolean {
    const requested = this.#requested.delete(version);
    const periodic = this.#everySteps > 0 && version > this.#after && version % this.#everySteps === 0;
    if ((!requested && !periodic) || this.#last === version) return false;
    this.#last = version;
    return true;
  }

  /** A snapshot of `version` was taken outside due() (an immediate request). */
  taken(version: number): void {
    this.#last = version;
  }
}
