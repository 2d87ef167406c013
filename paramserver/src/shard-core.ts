/**
 * What a parameter shard's parts share: its buffers, version, barrier and generation, in
 * one plain object that ParameterShard keeps private and passes explicitly to the
 * functions of shard-assignment.ts, shard-checkpoints.ts, shard-push.ts and
 * shard-pulls.ts, so that none of it is public. Every field is created here, in one
 * order, so that the object keeps one shape: the push path reads it for every chunk.
 */

import type { ShardStats } from "@trainfleet/dataplane";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { Range } from "@trainfleet/spec";
import { AsyncPushes } from "./async-apply.js";
import type { DeadlineWatch } from "./deadline-watch.js";
import type { Optimizer } from "./optimizer.js";
import type { ShardConfig } from "./shard-config.js";
import { ShardGeneration } from "./shard-generation.js";
import type { ShardSnapshot } from "./shard-snapshot.js";
import { SnapshotSchedule } from "./shard-snapshot.js";
import { StepBarrier } from "./step-barrier.js";

export interface ShardCore {
  config: ShardConfig | undefined;
  params: Float32Array;
  /** The step in progress writes its applied chunks here; it becomes `params` when complete. */
  next: Float32Array;
  optimizer: Optimizer | undefined;
  chunks: Range[];
  version: number;
  /** One buffer per rank, kept when the world shrinks (a transport may still be writing into one). */
  contributions: Float32Array[];
  average: Float32Array;
  readonly barrier: StepBarrier;
  /** Counts barrier resets, so that a failed push takes back only what it gave to the step still in progress. */
  barrierEpoch: number;
  readonly async: AsyncPushes;
  readonly generation: ShardGeneration;
  deadlines: DeadlineWatch | undefined;
  /** See ParameterShard.revision. */
  revision: number;
  /** The per-chunk list of what each rank contributed, reused. */
  sources: Float32Array[];
  /** Who waits for the next change (shard-pulls.ts). */
  changed: Array<() => void>;
  snapshots: SnapshotSchedule;
  readonly snapshotListeners: Set<(snapshot: ShardSnapshot) => void>;
  readonly stats: ShardStats;
}

/** An unconfigured shard's state: no buffers until the first ShardAssignment (configureShard). */
export function createShardCore(): ShardCore {
  const barrier = new StepBarrier();
  return {
    config: undefined,
    params: new Float32Array(0),
    next: new Float32Array(0),
    optimizer: undefined,
    chunks: [],
    version: 0,
    contributions: [],
    average: new Float32Array(0),
    barrier,
    barrierEpoch: 0,
    async: new AsyncPushes(barrier),
    generation: new ShardGeneration(),
    deadlines: undefined,
    revision: 0,
    sources: [],
    changed: [],
    snapshots: new SnapshotSchedule(),
    snapshotListeners: new Set(),
    stats: { bytesIn: 0, bytesOut: 0, aggregationMs: 0 },
  };
}

export function isAsync(s: ShardCore): boolean {
  return s.config?.mode === "async";
}

export function requireConfig(s: ShardCore): ShardConfig {
  if (s.config === undefined)
    throw new TrainfleetError(Code.UNAVAILABLE, "this shard has not been configured by the coordinator yet; retry shortly");
  return s.config;
}

/** Drops the step in progress (in async mode, every rank's row). */
export function resetBarrier(s: ShardCore): void {
  s.barrierEpoch++;
  s.barrier.reset(s.config?.worldSize ?? 0, s.chunks.length);
  if (isAsync(s)) s.async.reset(s.config!.worldSize);
}
