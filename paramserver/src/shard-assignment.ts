/**
 * What the coordinator's ShardAssignment and open_generation do to a parameter shard
 * (ParameterShard.configure and openGeneration): the first assignment allocates it, and
 * the generations move it between closed and open (shard-generation.ts keeps the phase).
 *
 * Generations: every ShardAssignment of a new generation closes the shard. The step in
 * progress is dropped (barrier reset), pushes are refused UNAVAILABLE, pulls wait, and
 * pulls of the old generation end ABORTED. `openGeneration` then names the version to go
 * on from, the lowest any shard holds. A shard one version ahead (it completed the
 * abandoned step, another shard did not) goes back: the last step's swap left the version
 * before in the second buffers, parameters and optimizer state alike, so swapping back
 * restores it bit for bit, as long as no chunk of a later step has been applied over it
 * since and no restore came in between. Anything else is refused FAILED_PRECONDITION and
 * the shard stays closed.
 *
 * Async mode: shards do not agree on versions, so each opens a generation at its own, and
 * deadlines do not apply.
 */

import { kernelFloat32Array } from "@trainfleet/kernels";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { chunkRanges, initialParameters } from "@trainfleet/spec";
import { DeadlineWatch } from "./deadline-watch.js";
import { createOptimizer } from "./optimizer.js";
import type { ShardConfig } from "./shard-config.js";
import type { ShardCore } from "./shard-core.js";
import { isAsync, resetBarrier } from "./shard-core.js";
import { notifyChange } from "./shard-pulls.js";
import { SnapshotSchedule } from "./shard-snapshot.js";

/** See ParameterShard.configure. */
export function configureShard(s: ShardCore, config: ShardConfig): void {
  const current = s.config;
  if (current !== undefined) {
    if (current.jobId !== config.jobId || current.range.begin !== config.range.begin || current.range.end !== config.range.end) {
      throw new TrainfleetError(
        Code.FAILED_PRECONDITION,
        `shard already serves job "${current.jobId}" range [${current.range.begin}, ${current.range.end}); start a new shard process for another job or range`,
      );
    }
    if (config.generation === current.generation) {
      if (config.worldSize !== current.worldSize) {
        throw new TrainfleetError(
          Code.FAILED_PRECONDITION,
          `world_size: generation ${config.generation} has world size ${current.worldSize} on this shard, the assignment says ${config.worldSize}; a new world size comes with a new generation`,
          { field: "world_size" },
        );
      }
      return;
    }
  } else {
    const size = config.range.end - config.range.begin;
    // The hot buffers live in the kernel memory, where the WebAssembly kernels work.
    s.params = kernelFloat32Array(size);
    s.params.set(config.initial ?? initialParameters(config.layout, config.seed, config.range.begin, config.range.end));
    s.next = kernelFloat32Array(size);
    s.optimizer = createOptimizer(config.optimizer, size);
    s.deadlines = new DeadlineWatch(config.stepDeadlineMs ?? 60_000);
    s.chunks = chunkRanges({ begin: 0, end: size }, config.chunkElements);
    // One chunk's average at a time: it is applied as soon as it is reduced.
    s.average = kernelFloat32Array(Math.min(size, config.chunkElements));
    s.snapshots = new SnapshotSchedule(config.checkpointEverySteps ?? 0, 0);
  }
  s.config = config;
  s.generation.take(config.generation);
  while (s.contributions.length < config.worldSize) s.contributions.push(kernelFloat32Array(s.params.length));
  resetBarrier(s);
  notifyChange(s);
}

/** See ParameterShard.openGeneration. */
export function openShardGeneration(s: ShardCore, generation: number, version: number): void {
  if (!s.generation.opening(generation)) return;
  if (version !== s.version && !isAsync(s)) rollBack(s, version);
  s.generation.open();
  s.deadlines!.generationOpened(s.config!.worldSize);
  notifyChange(s);
}

/** Back to version `to`, which the second buffers hold (ShardGeneration checks that they do). */
function rollBack(s: ShardCore, to: number): void {
  s.generation.rollBack(s.version, to);
  [s.params, s.next] = [s.next, s.params];
  s.optimizer!.rollback();
  s.version = to;
  s.snapshots.rolledBack(to);
  s.revision++;
}
