/**
 * One shard as a parameter client sees it: push this shard's chunks of a gradient, pull
 * this shard's range into the whole vector. A ShardConnection is one over TCP; a shard
 * living in the same process (colocated placement) is reached through memory instead.
 */
import type { Range } from "@trainfleet/spec";

export interface PushTag {
  generation: number;
  step: number;
  rank: number;
}

export interface ShardLink {
  /**
   * Neither link copies the gradient (a socket sends from it, a colocated shard reads it
   * in place): the caller must not change it until it has pulled the version its push
   * leads to.
   */
  push(tag: PushTag, gradient: Float32Array, chunks: readonly Range[], signal?: AbortSignal): Promise<void>;
  /** Fills this shard's range of `into`; resolves with the version. */
  pull(minVersion: number, into: Float32Array, signal?: AbortSignal): Promise<number>;
  /** push, and the pull of the version it leads to; rejects with the push's error if it fails. */
  pushThenPull(tag: PushTag, gradient: Float32Array, chunks: readonly Range[], into: Float32Array, signal?: AbortSignal): Promise<number>;
  close(): void;
}
