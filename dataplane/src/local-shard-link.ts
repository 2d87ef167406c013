/**
 * A shard in the worker's own process (colocated placement), reached through memory: the
 * same push transaction and versions as over the network, without a socket and without
 * copies on the way in. The worker's own key range then never leaves its process.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { Range } from "@trainfleet/spec";
import type { PushTag, ShardLink } from "./shard-link.js";
import type { ShardPort } from "./shard-port.js";

export function createLocalShardLink(shard: ShardPort, jobId: string): ShardLink {
  const never = new AbortController().signal;
  const link: ShardLink = {
    /** Lends the gradient to the shard (no copy): the caller must not change it until it has pulled the step's version. */
    async push(tag: PushTag, gradient: Float32Array, chunks: readonly Range[]) {
      const range = shard.config?.range;
      if (range === undefined)
        throw new TrainfleetError(Code.UNAVAILABLE, "the colocated shard has not been configured by the coordinator yet; retry shortly");
      const slice = gradient.subarray(range.begin, range.end);
      const transaction = shard.beginPush();
      try {
        for (const chunk of chunks)
          transaction.lend({ jobId, ...tag, offset: chunk.begin, byteLength: (chunk.end - chunk.begin) * 4 }, slice);
      } catch (error) {
        transaction.abort();
        throw error;
      }
      transaction.commit();
    },
    /** Copies each chunk as soon as the step has applied it, while it is still in the cache. */
    async pull(minVersion: number, into: Float32Array, signal?: AbortSignal) {
      return shard.streamParameters(jobId, minVersion, signal ?? never, (index, _version, values) => {
        const chunk = shard.chunks[index]!;
        into.set(values.subarray(chunk.begin, chunk.end), shard.config!.range.begin + chunk.begin);
      });
    },
    async pushThenPull(tag, gradient, chunks, into, signal) {
      await link.push(tag, gradient, chunks, signal);
      return link.pull(tag.step + 1, into, signal);
    },
    close() {},
  };
  return link;
}
