/**
 * A model's buffers (non-trainable weights: BatchNormalization's moving statistics) ride
 * in the parameter vector after its trainable tensors (ParameterLayout.trainableCount), so
 * they are pulled, checkpointed and written with the rest. They are not gradients: no
 * average, no optimizer. Each step makes them the values rank 0 pushed (what its forward
 * pass left), as PyTorch DDP's broadcast_buffers makes every rank's buffers rank 0's.
 */
import type { ShardConfig } from "./shard-config.js";

/** The shard-local index where the buffers begin: the range's length when it holds none. */
export function localBufferBegin(config: Pick<ShardConfig, "range" | "layout">): number {
  const { begin, end } = config.range;
  return Math.min(end - begin, Math.max(0, config.layout.trainableCount - begin));
}

/** Where [from, to) splits into trained elements [from, split) and buffers [split, to). */
export function bufferSplit(from: number, to: number, bufferBegin: number): number {
  return Math.min(to, Math.max(from, bufferBegin));
}
