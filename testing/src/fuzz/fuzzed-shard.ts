/**
 * A real shard (shard-harness.ts: its gRPC service and TCP data channel on 127.0.0.1) for
 * fuzz tests, small enough (four chunks of 64 values, two ranks) that each run can start
 * its step afresh: `restart` opens a new generation from the initial state, as a
 * coordinator's restore does, so nothing an earlier run did is left but what the shard
 * itself kept. Valid pushes go in process, so that the fuzzed bytes are the only ones on
 * the wire, and `visibleState` is what a refused request must leave exactly as it was.
 */
import { create } from "@bufbuild/protobuf";
import type { PushResult } from "@trainfleet/dataplane";
import type { PushRequest } from "@trainfleet/proto";
import { PushRequestSchema } from "@trainfleet/proto";
import type { ShardHarness } from "../shard/shard-harness.js";
import { gradientChunks, startShardHarness } from "../shard/shard-harness.js";

export interface VisibleShardState {
  version: number;
  /** Bit patterns of the parameters and of each optimizer state array (NaN and -0 compare exactly). */
  parameters: number[];
  state: number[][];
}

export interface FuzzedShard {
  readonly harness: ShardHarness;
  /** The generation of the step in progress. */
  readonly generation: number;
  /** Opens a new generation at version 0 with the initial parameters and optimizer state. */
  restart(): void;
  /** Rank `rank`'s valid gradient for step 0 of the current generation, as push messages, one a chunk. */
  chunks(rank: number): PushRequest[];
  /** Takes rank `rank`'s valid push in process, as the gRPC service would. */
  pushValid(rank: number): PushResult;
  visibleState(): VisibleShardState;
  close(): Promise<void>;
}

/** Rank `rank`'s gradient: finite values that differ by rank and element. */
export const fuzzGradient = (rank: number) => (i: number) => (((i * 7 + rank * 13) % 17) - 8) / 64;

const bits = (values: Float32Array): number[] => Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));

export async function startFuzzedShard(mode: "sync" | "async" = "sync"): Promise<FuzzedShard> {
  const harness = await startShardHarness({ range: { begin: 1000, end: 1256 }, chunkElements: 64, worldSize: 2, mode });
  const initial = harness.shard.snapshot();
  let generation = harness.config.generation;
  const chunks = (rank: number) =>
    gradientChunks(harness.config, { step: 0, rank, generation }, fuzzGradient(rank)).map((chunk) => create(PushRequestSchema, chunk));
  return {
    harness,
    get generation() {
      return generation;
    },
    restart() {
      generation++;
      harness.shard.configure({ ...harness.config, generation });
      harness.shard.restore(initial);
      harness.shard.openGeneration(generation, 0);
    },
    chunks,
    pushValid(rank) {
      const transaction = harness.shard.beginPush();
      try {
        for (const chunk of chunks(rank)) transaction.add(chunk);
      } catch (error) {
        transaction.abort();
        throw error;
      }
      return transaction.commit();
    },
    visibleState() {
      const snapshot = harness.shard.snapshot();
      return { version: harness.shard.version, parameters: bits(snapshot.parameters), state: snapshot.state.map(bits) };
    },
    close: () => harness.close(),
  };
}
