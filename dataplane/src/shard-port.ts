/**
 * The parameter shard as its transports see it: what the TCP server, the gRPC service and
 * the in-process link call. The shard (paramserver) implements it; the data plane never
 * imports the shard, so the transports can be read and tested on their own.
 */
import type { PeerIdentity } from "@trainfleet/proto";
import type { Range } from "@trainfleet/spec";
import type { PushTransaction, ShardStats } from "./push-transaction.js";

/** What the transports need of the shard's configuration. */
export interface ShardPortConfig {
  /** The job the shard serves; a connection for another job is refused. */
  jobId: string;
  /** The element offsets of the whole parameter vector that the shard owns. */
  range: Range;
  /** Async mode: a pull reads a copy, so what the socket sends must not alias shared encodings. */
  mode?: "sync" | "async";
}

/** A whole version, for the generation a pull belongs to (from waitForVersion). */
export interface ServedVersion {
  version: number;
  generation: number;
  /** The version's slice: a live view in sync mode (it holds still while checkServing passes), a copy in async. */
  values: Float32Array;
}

export interface ShardPort {
  /** Absent until the coordinator has configured the shard. */
  readonly config: ShardPortConfig | undefined;
  /** The shard's chunks, in shard-local element offsets. */
  readonly chunks: readonly Range[];
  /** The newest whole version. */
  readonly version: number;
  /** Changes whenever a version may be computed again with other values (a go-back or a restore). */
  readonly revision: number;
  /** Traffic counters the transports add to. */
  readonly stats: ShardStats;
  /**
   * One push, whole or not at all; `peer` is whom the pusher's certificate names, over
   * mutual TLS (undefined in plaintext and in process), for the shard to check that the
   * rank pushed is that worker's.
   */
  beginPush(peer?: PeerIdentity): PushTransaction;
  /** Resolves once the shard serves `jobId`, is open and holds at least `minVersion`. */
  waitForVersion(jobId: string, minVersion: number, signal: AbortSignal): Promise<ServedVersion>;
  /** Throws ABORTED when what a pull is reading (from waitForVersion) has changed. */
  checkServing(served: ServedVersion): void;
  /** Hands over version >= minVersion chunk by chunk, each as soon as it is ready; resolves with the version sent. */
  streamParameters(
    jobId: string,
    minVersion: number,
    signal: AbortSignal,
    send: (chunk: number, version: number, values: Float32Array) => void,
  ): Promise<number>;
}
