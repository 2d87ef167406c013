/**
 * A parameter shard's push transaction (ParameterShard.beginPush) and the per-step
 * aggregation it drives: each chunk is checked (push-validation.ts, async-apply.ts), lands
 * in its rank's buffer (or is lent in place), and is committed at once.
 *
 * A step's contributions land in one buffer per rank. A chunk is reduced (in rank order)
 * and the optimizer applied to it as soon as every rank has committed it (a model's
 * buffers take rank 0's values instead: buffer-region.ts), so that pulls
 * can stream it back while the rest of the step is still arriving. Until the last chunk
 * is in, the step's results live in a second buffer (parameters and optimizer state are
 * double-buffered): version v stays whole for its readers, and a push rejected part-way
 * is forgotten by clearing flags, not by undoing arithmetic. The last chunk swaps the
 * buffers and raises the version by one.
 *
 * Async mode (async-apply.ts): each rank's whole gradient is applied alone as it
 * completes, one version each.
 */

import type { ChunkHeader, PushTransaction } from "@trainfleet/dataplane";
import type { PeerIdentity } from "@trainfleet/proto";
import { invalidField } from "@trainfleet/proto";
import { averageInRankOrder } from "./aggregate.js";
import { applyRankGradient } from "./async-apply.js";
import { bufferSplit, localBufferBegin } from "./buffer-region.js";
import { checkChunkLength, checkFinite, checkPusher, checkPushHeader, checkPushSource, chunkIndexOf } from "./push-validation.js";
import { emitSnapshot } from "./shard-checkpoints.js";
import type { ShardCore } from "./shard-core.js";
import { isAsync, requireConfig, resetBarrier } from "./shard-core.js";
import { notifyChange } from "./shard-pulls.js";

/** One push, whole or not at all (the data plane's PushTransaction); `peer`: who pushes, over mutual TLS. */
export function beginShardPush(s: ShardCore, peer?: PeerIdentity): PushTransaction {
  let header: { rank: number; step: number } | undefined;
  /** Chunks this push committed, to roll back if a later one is rejected, and the barrier they went to. */
  const committed: number[] = [];
  let epoch: number | undefined;
  /** Its rank's row resets then (async mode clears one rank's row alone). */
  let rowEpoch: number | undefined;
  let duplicates = 0;
  /** Where the bytes of duplicate chunks go: read, then dropped. */
  let discard: Uint8Array | undefined;
  const classify = (chunk: ChunkHeader): { index: number; duplicate: boolean } => {
    const config = requireConfig(s);
    const open = s.generation.phase === "open";
    let state: "current" | "applied";
    if (isAsync(s)) {
      checkPushSource(config, open, chunk);
      state = s.async.check(s.version, config.maxStaleness ?? 0, chunk, header === undefined);
    } else {
      state = checkPushHeader(config, s.version, open, chunk);
    }
    if (header === undefined) {
      checkPusher(config, chunk, peer);
      header = { rank: chunk.rank, step: chunk.step };
    } else if (header.rank !== chunk.rank || header.step !== chunk.step) {
      throw invalidField(
        "step",
        `one push carries one (step, rank): began with (${header.step}, ${header.rank}), got (${chunk.step}, ${chunk.rank})`,
      );
    }
    const index = chunkIndexOf(config, chunk.offset, s.chunks.length);
    const range = s.chunks[index]!;
    checkChunkLength(chunk.offset, range.end - range.begin, chunk.byteLength);
    return { index, duplicate: state === "applied" || s.barrier.isCommitted(chunk.rank, index) };
  };
  const transaction: PushTransaction = {
    reserve: (chunk) => {
      const { index, duplicate } = classify(chunk);
      s.stats.bytesIn += chunk.byteLength;
      if (duplicate) {
        if (discard === undefined || discard.byteLength < chunk.byteLength) discard = new Uint8Array(chunk.byteLength);
        return discard.subarray(0, chunk.byteLength);
      }
      const target = s.contributions[chunk.rank]!;
      return new Uint8Array(target.buffer, target.byteOffset + s.chunks[index]!.begin * 4, chunk.byteLength);
    },
    received: (chunk) => {
      const { index, duplicate } = classify(chunk);
      if (duplicate) {
        duplicates++;
        return;
      }
      const range = s.chunks[index]!;
      checkFinite(s.contributions[chunk.rank]!, range.begin, range.end, chunk.offset, s.config!.layout, chunk);
      // Committed at once, so that the chunk is reduced while the rest is in flight.
      epoch ??= s.barrierEpoch;
      rowEpoch ??= s.barrier.rowResets(chunk.rank);
      commitChunk(s, chunk.rank, index);
      committed.push(index);
    },
    add: (request) => {
      const chunk = { ...request, offset: Number(request.offset), byteLength: request.data.byteLength };
      transaction.reserve(chunk).set(request.data);
      transaction.received(chunk);
    },
    lend: (chunk, values) => {
      const { index, duplicate } = classify(chunk);
      if (duplicate) {
        duplicates++;
        return;
      }
      const range = s.chunks[index]!;
      checkFinite(values, range.begin, range.end, chunk.offset, s.config!.layout, chunk);
      epoch ??= s.barrierEpoch;
      rowEpoch ??= s.barrier.rowResets(chunk.rank);
      commitChunk(s, chunk.rank, index, values);
      committed.push(index);
    },
    commit: () => ({ chunksAccepted: committed.length, chunksDuplicate: duplicates, version: s.version }),
    abort: () => {
      // Unless the barrier (in async mode, this rank's row) was reset since (the step
      // completed through a retry's chunks, or a new generation dropped it), the step this
      // push fed has not completed: what its chunks fed lives only in the step's second
      // buffers, and goes.
      if (header !== undefined && epoch === s.barrierEpoch && rowEpoch === s.barrier.rowResets(header.rank)) {
        for (const index of committed) if (s.barrier.uncommit(header.rank, index)) s.revision++;
      }
      committed.length = 0;
      notifyChange(s);
    },
  };
  return transaction;
}

function commitChunk(s: ShardCore, rank: number, index: number, lentSlice?: Float32Array): void {
  if (isAsync(s)) return commitAsync(s, rank, index, lentSlice);
  const chunkComplete = s.barrier.commit(rank, index, lentSlice);
  if (s.barrier.hasAllChunks(rank)) s.deadlines!.rankPushed(rank);
  if (!chunkComplete) return;
  // Reduce and apply each chunk as soon as every rank has it, overlapping with the
  // transfer of the rest; the results go to the second buffers until the step is whole.
  const started = performance.now();
  const chunk = s.chunks[index]!;
  const sources = s.sources;
  sources.length = s.config!.worldSize;
  for (let r = 0; r < sources.length; r++) sources[r] = s.barrier.source(r, index, s.contributions[r]!);
  const split = bufferSplit(chunk.begin, chunk.end, localBufferBegin(s.config!));
  s.generation.chunkApplied(s.version);
  if (split > chunk.begin) {
    averageInRankOrder(sources, chunk.begin, split, s.average);
    s.optimizer!.apply(s.params, s.average, s.next, chunk.begin, split, s.version + 1);
  }
  if (split < chunk.end) s.next.set(sources[0]!.subarray(split, chunk.end), split);
  if (s.barrier.markApplied(index)) {
    [s.params, s.next] = [s.next, s.params];
    s.optimizer!.commit();
    s.version++;
    s.generation.stepCompleted();
    s.deadlines!.stepApplied();
    resetBarrier(s);
    if (s.snapshots.due(s.version)) emitSnapshot(s);
  }
  s.stats.aggregationMs += performance.now() - started;
  notifyChange(s);
}

/** Async mode: once `rank` has every chunk, its gradient alone makes the next version. */
function commitAsync(s: ShardCore, rank: number, index: number, lentSlice?: Float32Array): void {
  s.barrier.commit(rank, index, lentSlice);
  if (!s.barrier.hasAllChunks(rank)) return;
  const started = performance.now();
  s.generation.chunkApplied(s.version);
  applyRankGradient(s.optimizer!, s.params, s.next, s.chunks, s.barrier, rank, s.contributions[rank]!, {
    t: s.version + 1,
    bufferBegin: localBufferBegin(s.config!),
  });
  [s.params, s.next] = [s.next, s.params];
  s.optimizer!.commit();
  s.version++;
  s.generation.stepCompleted();
  s.async.applied(rank);
  s.barrier.resetRank(rank);
  if (s.snapshots.due(s.version)) emitSnapshot(s);
  s.stats.aggregationMs += performance.now() - started;
  notifyChange(s);
}
