/**
 * A shard in the worker's own process (colocated placement), reached through memory: the
 * same push transaction and versions as over the network, with a copy in place of a
 * socket. The worker's own key range then never leaves its process.
 */
import type { PushTag, Range, ShardLink } from "@trainfleet/proto";
import { float32Bytes } from "@trainfleet/proto";
import type { ParameterShard } from "./parameter-shard.js";

export function createLocalShardLink(shard: ParameterShard, jobId: string): ShardLink {
  const never = new AbortController().signal;
  const link: ShardLink = {
    async push(tag: PushTag, gradient: Float32Array, chunks: readonly Range[]) {
      const transaction = shard.beginPush();
      try {
        for (const chunk of chunks) {
          const header = { jobId, ...tag, offset: chunk.begin, byteLength: (chunk.end - chunk.begin) * 4 };
          transaction.reserve(header).set(float32Bytes(gradient.subarray(chunk.begin, chunk.end)));
          transaction.received(header);
        }
      } catch (error) {
        transaction.abort();
        throw error;
      }
      transaction.commit();
    },
    async pull(minVersion: number, into: Float32Array, signal?: AbortSignal) {
      const version = await shard.waitForVersion(jobId, minVersion, signal ?? never);
      into.set(shard.parameters, shard.config!.range.begin);
      return version;
    },
    // In memory there is nothing to overlap: the push is complete when it returns.
    async pushThenPull(tag, gradient, chunks, into, signal) {
      await link.push(tag, gradient, chunks, signal);
      return link.pull(tag.step + 1, into, signal);
    },
    close() {},
  };
  return link;
}
