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
 *
 * Before the first assignment allocates anything (and before a larger world adds rank
 * buffers), the memory it needs is checked against the machine's total memory: a job too
 * big for the machine is refused RESOURCE_EXHAUSTED at once instead of swapping it to a halt.
 */
import { totalmem } from "node:os";

import { kernelFloat32Array } from "@trainfleet/kernels";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { chunkRanges, initialParameters } from "@trainfleet/spec";
import { DeadlineWatch } from "./deadline-watch.js";
import { createOptimizer, optimizerKind, optimizerStateArrays } from "./optimizer.js";
import type { ShardConfig } from "./shard-config.js";
import type { ShardCore } from "./shard-core.js";
import { isAsync, resetBarrier } from "./shard-core.js";
import { notifyChange } from "./shard-pulls.js";
import { SnapshotSchedule } from "./shard-snapshot.js";

/**
 * The bytes a shard of `config` allocates: float32 parameters and their second buffer, each
 * optimizer state array twice (double buffered), one contribution buffer per rank, and the
 * initial values while they are copied in.
 */
export function shardMemoryBytes(config: Pick<ShardConfig, "range" | "optimizer" | "worldSize">): number {
  const size = config.range.end - config.range.begin;
  const stateArrays = optimizerStateArrays[optimizerKind(config.optimizer)];
  return 4 * size * (2 + 2 * stateArrays + config.worldSize + 1);
}

/** Refuses a shard whose buffers (`bytes` more) cannot fit in the machine's memory (`machineBytes`: os.totalmem()). */
export function checkShardMemory(config: ShardConfig, bytes: number, machineBytes: number): void {
  if (bytes <= machineBytes) return;
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
  throw new TrainfleetError(
    Code.RESOURCE_EXHAUSTED,
    `shard range [${config.range.begin}, ${config.range.end}) of job "${config.jobId}" needs ${gib(bytes)} (parameters, optimizer state and ${config.worldSize} ranks' contributions, double buffered) but this machine has ${gib(machineBytes)} of memory in all (os.totalmem); use more parameter-server shards, fewer workers or a smaller model`,
  );
}

/** See ParameterShard.configure; `machineBytes` is what the memory check compares with (os.totalmem(), or a test's). */
export function configureShard(s: ShardCore, config: ShardConfig, machineBytes = totalmem()): void {
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
    checkShardMemory(config, shardMemoryBytes(config), machineBytes);
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
  // A larger world adds a contribution buffer per new rank.
  const newRanks = Math.max(0, config.worldSize - s.contributions.length);
  if (current !== undefined && newRanks > 0) checkShardMemory(config, shardMemoryBytes(config), machineBytes);
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
