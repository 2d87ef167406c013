/**
 * One parameter-server shard: its slice of the parameters and optimizer state, the
 * per-step barrier over ranks, and versions that only go up. No I/O here: the data plane's
 * transports (dataplane/: the TCP data channel, the gRPC service, the in-process link) feed it
 * through the ShardPort it implements.
 *
 * This class is what other code uses; its state is one private ShardCore (shard-core.ts),
 * passed to the functions that do the work, one concept per file:
 * - shard-assignment.ts: configure and the generations (close, open, go back one version);
 * - shard-checkpoints.ts: restores and snapshots;
 * - shard-push.ts: the push transaction and the rank-order reduction per chunk, sync and async;
 * - shard-pulls.ts: the pull side and the change notification that pulls wait on.
 *
 * Async mode (async-apply.ts): each rank's whole gradient is applied alone as it
 * completes, one version each, and pulls get a copy of the newest whole version (a later
 * gradient overwrites the buffers while the copy may still be queued on a socket). Shards
 * do not agree on versions then: each opens a generation at its own, and deadlines do
 * not apply.
 */

import type { PushTransaction, ServedVersion, ShardPort, ShardStats } from "@trainfleet/dataplane";
import type { PeerIdentity } from "@trainfleet/proto";
import type { Range } from "@trainfleet/spec";
import { configureShard, openShardGeneration } from "./shard-assignment.js";
import { requestShardSnapshot, restoreShard, takeSnapshot } from "./shard-checkpoints.js";
import type { ShardConfig } from "./shard-config.js";
import type { ShardCore } from "./shard-core.js";
import { createShardCore, isAsync } from "./shard-core.js";
import type { ShardPhase } from "./shard-generation.js";
import { checkShardServing, streamShardParameters, waitForShardVersion } from "./shard-pulls.js";
import { beginShardPush } from "./shard-push.js";
import type { ShardSnapshot, ShardState } from "./shard-snapshot.js";

/** The shard behind the data plane's port: its transports (TCP, gRPC, in-process) call only what ShardPort names. */
export class ParameterShard implements ShardPort {
  readonly #s: ShardCore = createShardCore();
  readonly stats: ShardStats = this.#s.stats;

  get version(): number {
    return this.#s.version;
  }

  get config(): ShardConfig | undefined {
    return this.#s.config;
  }

  /** By rank of the open generation, the step deadlines missed in a row (deadline-watch.ts); none while closed, nor in async mode (nobody waits). */
  missedDeadlines(): number[] {
    const s = this.#s;
    return s.generation.phase === "open" && !isAsync(s) ? (s.deadlines?.missedDeadlines() ?? []) : [];
  }

  /** The generation of the latest ShardAssignment (0 before the first). */
  get generation(): number {
    return this.#s.generation.generation;
  }

  /** "closed" from a new generation's ShardAssignment until openGeneration: no push taken, no pull served. */
  get phase(): ShardPhase {
    return this.#s.generation.phase;
  }

  /**
   * Changes whenever values already handed out for some version may be replaced by other
   * values for the same version (a rollback computes the version again; a push rejected
   * part-way takes chunks back): caches keyed by version must start again.
   */
  get revision(): number {
    return this.#s.revision;
  }

  /**
   * Takes the coordinator's ShardAssignment. The first allocates the shard at version 0.
   * One of a new generation closes the shard: the step in progress is dropped, pushes are
   * refused and pulls wait until openGeneration(), and pulls of the generation before end
   * ABORTED. One repeating the current generation changes nothing. After any that closed
   * it, restore() may replace the shard's state.
   */
  configure(config: ShardConfig): void {
    configureShard(this.#s, config);
  }

  /**
   * The coordinator's open_generation: serve `generation` from `version`, the lowest
   * version any shard reported. A shard at version + 1 goes back to `version` first. When
   * it cannot (another difference, or the version before is no longer held), throws
   * FAILED_PRECONDITION naming both versions, and stays closed. Opening the generation
   * the shard is open for already changes nothing. In async mode shards do not agree on
   * versions: each goes on from its own, whatever `version` says.
   */
  openGeneration(generation: number, version: number): void {
    openShardGeneration(this.#s, generation, version);
  }

  /**
   * Replaces the version, parameters and optimizer state with a checkpoint's (or the
   * seeded initial state's, initialShardState), whatever the shard held: only while it is
   * closed for a generation, before openGeneration (which then names this version). The
   * caller has checked that the snapshot is this shard's (readShardCheckpoint); what is
   * checked again here is what would corrupt it.
   */
  restore(snapshot: ShardState): void {
    restoreShard(this.#s, snapshot);
  }

  /** A copy of the current version's slice and optimizer state, with the generation it was reached in. */
  snapshot(): ShardSnapshot {
    return takeSnapshot(this.#s);
  }

  /** Calls `listener` with each scheduled snapshot, synchronously as its version is reached; returns the unsubscribe. */
  onSnapshot(listener: (snapshot: ShardSnapshot) => void): () => void {
    const listeners = this.#s.snapshotListeners;
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  /** The coordinator asks for a snapshot at `version`: taken now if the shard is there, else when it gets there. */
  requestSnapshot(version: number): void {
    requestShardSnapshot(this.#s, version);
  }

  /** Parameters of the current version, shard-local indexing (a live view: copy before awaiting; pulls use waitForVersion's values). */
  get parameters(): Float32Array {
    return this.#s.params;
  }

  get chunks(): readonly Range[] {
    return this.#s.chunks;
  }

  /** `peer`: who pushes, over mutual TLS; a rank's chunks are taken only from the worker its generation gave it to. */
  beginPush(peer?: PeerIdentity): PushTransaction {
    return beginShardPush(this.#s, peer);
  }

  /**
   * Resolves once the shard serves `jobId`, is open and at least at `minVersion`, with the
   * version and the generation the pull belongs to: the one the shard was open for when
   * the pull first found it open. A new generation's assignment before then ends the pull
   * ABORTED, and so does one during the reading that follows (checkServing).
   */
  waitForVersion(jobId: string, minVersion: number, signal: AbortSignal): Promise<ServedVersion> {
    return waitForShardVersion(this.#s, jobId, minVersion, signal);
  }

  /** Throws ABORTED when what a pull is reading (from waitForVersion) has changed: a new generation was assigned, or (sync mode) the version moved. */
  checkServing(served: ServedVersion): void {
    checkShardServing(this.#s, served);
  }

  /**
   * Hands over the parameters of version >= minVersion chunk by chunk, each as soon as it
   * is ready: `send(chunk index, version, values)` with `values` the whole slice that
   * holds that chunk (a live view: in sync mode it holds still until the reader has
   * pushed again). Chunks of the step that leads to minVersion go as the step applies
   * them. Resolves with the version of the last chunk sent. Waits while the shard is
   * closed; ABORTED when a new generation is assigned after the pull found the shard open
   * (as in waitForVersion). In async mode: the newest whole version >= minVersion, from a
   * copy taken at once (nothing of a version in progress, which is one rank's gradient).
   */
  streamParameters(
    jobId: string,
    minVersion: number,
    signal: AbortSignal,
    send: (chunk: number, version: number, values: Float32Array) => void,
  ): Promise<number> {
    return streamShardParameters(this.#s, jobId, minVersion, signal, send);
  }
}
