/** What a transport hands a shard: one push, chunk by chunk, and what came of it. */
import type { PushRequest } from "@trainfleet/proto";

export interface PushResult {
  chunksAccepted: number;
  chunksDuplicate: number;
  version: number;
}

/** What identifies one pushed chunk: the fields of a PushRequest but its data. */
export interface ChunkHeader {
  jobId: string;
  generation: number;
  step: number;
  rank: number;
  offset: number;
  byteLength: number;
}

/**
 * One push, accepted whole or not at all: a transport calls `abort` when any chunk is
 * rejected, and the chunks already taken are rolled back, so a bad push changes nothing.
 * A chunk arrives in two halves so that a transport can receive its bytes in place:
 * `reserve` checks the header and says where the bytes go, `received` checks the bytes
 * once they are there and takes the chunk (it is reduced as soon as every rank has it).
 */
export interface PushTransaction {
  reserve(header: ChunkHeader): Uint8Array;
  received(header: ChunkHeader): void;
  /** reserve + copy + received, for transports that hand over whole messages. */
  add(request: PushRequest): void;
  /**
   * Takes the chunk from `values` without a copy, for a caller in this process (a
   * colocated worker): `values` is the rank's whole slice in shard-local indexing, and must
   * not change until the step's version is published (a trainer's gradient does not: it
   * waits for that version before computing the next).
   */
  lend(header: ChunkHeader, values: Float32Array): void;
  /** The push ended well: what it contributed. */
  commit(): PushResult;
  /** The push failed: forget every chunk it gave. */
  abort(): void;
}

export interface ShardStats {
  bytesIn: number;
  bytesOut: number;
  aggregationMs: number;
}
