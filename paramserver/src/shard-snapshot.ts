/**
 * A shard's state at one version, copied out for a checkpoint, and the schedule that says
 * at which versions to take one: every `everySteps` versions (as the coordinator expects,
 * see coordinator/src/checkpoints/checkpoint-tracker.ts) and whenever the coordinator asks. A shard
 * that goes back a version (a new generation abandoned the step it completed) voids the
 * snapshot it took of the version it left: it is taken again when the shard gets there
 * again, in the new generation. The seeded initial state (initialShardState) is a
 * ShardState too, so that "start again from the beginning" is a restore like any other.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { Range } from "@trainfleet/spec";
import { initialParameters } from "@trainfleet/spec";
import type { OptimizerKind } from "./optimizer.js";
import { optimizerKind, optimizerStateArrays } from "./optimizer.js";
import type { ShardConfig } from "./shard-config.js";

/** What a checkpoint file holds: a shard's state at one version. */
export interface ShardState {
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

/** A state copied out of a running shard. */
export interface ShardSnapshot extends ShardState {
  /** The generation the shard was in when it reached `version` (not in the file: the coordinator's record keeps it). */
  generation: number;
}

/** What keeps `snapshot` from being restored into a shard of `expected`: one phrase per difference. */
export function snapshotMismatches(snapshot: ShardState, expected: { jobId: string; range: Range; optimizer: OptimizerKind }): string[] {
  const { jobId, range, optimizer } = expected;
  const size = range.end - range.begin;
  return [
    snapshot.jobId !== jobId && `job "${snapshot.jobId}", not "${jobId}"`,
    (snapshot.range.begin !== range.begin || snapshot.range.end !== range.end) &&
      `range [${snapshot.range.begin}, ${snapshot.range.end}), not [${range.begin}, ${range.end})`,
    snapshot.optimizer !== optimizer && `optimizer ${snapshot.optimizer}, not ${optimizer}`,
    (snapshot.parameters.length !== size ||
      snapshot.state.length !== optimizerStateArrays[snapshot.optimizer] ||
      snapshot.state.some((s) => s.length !== size)) &&
      `arrays of the wrong size for ${size} elements`,
  ].filter((problem): problem is string => problem !== false);
}

/**
 * The state a shard of `config` starts at: version 0, the job's initial parameters (seeded,
 * or a fine-tuned model's weights)
 * (as configure() sets them) and a zero optimizer state. What a ShardRestore with an
 * empty path means: a job restarted before its first checkpoint.
 */
export function initialShardState(config: ShardConfig): ShardState {
  const { begin, end } = config.range;
  const optimizer = optimizerKind(config.optimizer);
  return {
    jobId: config.jobId,
    version: 0,
    range: { begin, end },
    optimizer,
    parameters: config.initial?.slice() ?? initialParameters(config.layout, config.seed, begin, end),
    state: Array.from({ length: optimizerStateArrays[optimizer] }, () => new Float32Array(end - begin)),
  };
}

export class SnapshotSchedule {
  #everySteps = 0;
  /** Periodic snapshots start after this version (the one the shard started or resumed at). */
  #after = 0;
  #requested = new Set<number>();
  /** Versions whose snapshot was taken, and whether the coordinator had asked for it: the latest two, which a rollback may come back to. */
  #taken = new Map<number, boolean>();

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
      throw new TrainfleetError(
        Code.FAILED_PRECONDITION,
        `version: a checkpoint of version ${version} was asked for, but this shard is at version ${current} already`,
        { field: "version" },
      );
    }
    if (version === current) return !this.#taken.has(version);
    this.#requested.add(version);
    return false;
  }

  /** Whether reaching `version` takes a snapshot; records it as taken. */
  due(version: number): boolean {
    const requested = this.#requested.delete(version);
    const periodic = this.#everySteps > 0 && version > this.#after && version % this.#everySteps === 0;
    if ((!requested && !periodic) || this.#taken.has(version)) return false;
    this.#record(version, requested);
    return true;
  }

  /** A snapshot of `version` was taken outside due() (an immediate request). */
  taken(version: number): void {
    this.#record(version, true);
  }

  /** The shard went back to version `to`: snapshots of later versions are void, and those asked for are pending again. */
  rolledBack(to: number): void {
    for (const [version, requested] of this.#taken) {
      if (version <= to) continue;
      this.#taken.delete(version);
      if (requested) this.#requested.add(version);
    }
  }

  #record(version: number, requested: boolean): void {
    this.#taken.set(version, requested);
    // A shard goes back one version at most: older records can never be asked about again.
    for (const old of this.#taken.keys()) if (old < version - 1) this.#taken.delete(old);
  }
}
