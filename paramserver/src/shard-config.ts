/** What a parameter-server shard is told by the coordinator: the job, its range, the generation. */

import type { OptimizerSpec, ShardAssignment } from "@trainfleet/proto";
import { TrainingMode } from "@trainfleet/proto";
import type { ParameterLayout, Range } from "@trainfleet/spec";
import { dataShape, parameterLayout } from "@trainfleet/spec";
import { modelWeightsSlice } from "./model-weights-slice.js";

export interface ShardConfig {
  jobId: string;
  generation: number;
  worldSize: number;
  /** Element offsets into the flattened parameters that this shard owns. */
  range: Range;
  chunkElements: number;
  optimizer: OptimizerSpec;
  layout: ParameterLayout;
  seed: number;
  /** The range's initial parameters when they are a model's weights (fine-tuning); absent: seeded from `seed`. */
  initial?: Float32Array | undefined;
  /** Snapshot for a checkpoint at every multiple of this version (0 or absent: only when the coordinator asks). */
  checkpointEverySteps?: number;
  /** A rank's push this long after the shard could take the step misses a deadline (deadline-watch.ts). */
  stepDeadlineMs?: number;
  /** "async": each rank's gradient is applied alone as soon as it is whole (async-apply.ts). Absent: sync. */
  mode?: "sync" | "async";
  /** Async only: the most versions a gradient may be behind the shard and still be applied (0 or absent: no bound). */
  maxStaleness?: number;
  /** Over mutual TLS: by rank, the certificate name of the worker that holds it (push-validation.ts checkPusher); absent or empty in plaintext. */
  rankIdentities?: readonly string[] | undefined;
}

/**
 * The shard's config from the coordinator's assignment (whose spec is already validated).
 * A fine-tuned model's weights are read for the first assignment of a job and kept after.
 */
export async function shardConfigFrom(assignment: ShardAssignment, current?: ShardConfig): Promise<ShardConfig> {
  const config = configOf(assignment);
  const { begin, end } = config.range;
  const same = current !== undefined && current.jobId === config.jobId && current.range.begin === begin && current.range.end === end;
  config.initial = same ? current.initial : await modelWeightsSlice(assignment.spec!, config.layout, config.range);
  return config;
}

function configOf(assignment: ShardAssignment): ShardConfig {
  const spec = assignment.spec!;
  const range = assignment.range!;
  return {
    jobId: spec.jobId,
    generation: assignment.generation,
    worldSize: assignment.worldSize,
    range: { begin: Number(range.begin), end: Number(range.end) },
    chunkElements: Math.floor(spec.parameterServers!.chunkBytes / 4),
    optimizer: spec.training!.optimizer!,
    layout: parameterLayout(spec.model!, dataShape(spec.dataset!)),
    seed: spec.training!.seed,
    // Without a folder to write to, no checkpoints (the coordinator then expects none).
    checkpointEverySteps: assignment.checkpointDir === "" ? 0 : (spec.checkpoints?.everySteps ?? 0),
    stepDeadlineMs: spec.workers!.stepDeadlineMs || 60_000,
    mode: spec.training!.mode === TrainingMode.ASYNC ? "async" : "sync",
    maxStaleness: spec.training!.maxStaleness,
    rankIdentities: assignment.rankIdentities.length === 0 ? undefined : [...assignment.rankIdentities],
  };
}
