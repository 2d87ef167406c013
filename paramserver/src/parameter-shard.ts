/**
 * One parameter-server shard: its slice of the parameters and optimizer state, the
 * per-step barrier over ranks, and versions that only go up. No I/O here: the data plane's
 * transports (dataplane/: the TCP data channel, the gRPC service, the in-process link) feed it
 * through the ShardPort it implements.
 *
 * A step's contributions land in one buffer per rank. A chunk is reduced (in rank order)
 * and the optimizer applied to it as soon as every rank has committed it, so that pulls
 * can stream it back while the rest of the step is still arriving. Until the last chunk
 * is in, the step's results live in a second buffer (parameters and optimizer state are
 * double-buffered): version v stays whole for its readers, and a push rejected part-way
 * is forgotten by clearing flags, not by undoing arithmetic. The last chunk swaps the
 * buffers and raises the version by one.
 *
 * Generations (shard-generation.ts): every ShardAssignment of a new generation closes the
 * shard. The step in progress is dropped (barrier reset), pushes are refused UNAVAILABLE,
 * pulls wait, and pulls of the old generation end ABORTED. `openGeneration` then names the
 * version to go on from, the lowest any shard holds. A shard one version ahead (it
 * completed the abandoned step, another shard did not) goes back: the last step's swap
 * left the version before in the second buffers, parameters and optimizer state alike, so
 * swapping back restores it bit for bit, as long as no chunk of a later step has been
 * applied over it since and no restore came in between. Anything else is refused
 * FAILED_PRECONDITION and the shard stays closed.
 *
 * Checkpoints: at the versions its SnapshotSchedule names, the shard copies the version's
 * slice and optimizer state the moment the version is reached (the step after next
 * overwrites those buffers) and hands the copy, with the generation it was reached in, to
 * its snapshot listeners, which write it out. Going back a version voids the snapshot of
 * the version left: it is taken again when the shard gets there again.
 *
 * Restores: `restore` replaces a closed shard's state with such a snapshot, or with the
 * seeded initial state (initialShardState): a job resumed from a checkpoint, and a
 * restarted coordinator or shard, whose new generation restores every shard to the same
 * checkpoint. Only while closed, so that no pull sees a version replaced under it (those of
 * the generation before ended ABORTED at the close).
 *
 * Async mode (async-apply.ts): each rank's whole gradient is applied alone as it
 * completes, one version each, and pulls get a copy of the newest whole version (a later
 * gradient overwrites the buffers while the copy may still be queued on a socket). Shards
 * do not agree on versions then: each opens a generation at its own, and deadlines do
 * not apply.
 */

import type { ChunkHeader, PushTransaction, ServedVersion, ShardPort, ShardStats } from "@trainfleet/dataplane";
import { kernelFloat32Array } from "@trainfleet/kernels";
import { Code, invalidField, TrainfleetError } from "@trainfleet/proto";
import type { Range } from "@trainfleet/spec";
import { chunkRanges, initialParameters } from "@trainfleet/spec";
import { averageInRankOrder } from "./aggregate.js";
import { AsyncPushes, applyRankGradient } from "./async-apply.js";
import { DeadlineWatch } from "./deadline-watch.js";
import type { Optimizer } from "./optimizer.js";
import { createOptimizer } from "./optimizer.js";
import { checkChunkLength, checkFinite, checkPushHeader, checkPushSource, chunkIndexOf } from "./push-validation.js";
import type { ShardConfig } from "./shard-config.js";
import type { ShardPhase } from "./shard-generation.js";
import { ShardGeneration } from "./shard-generation.js";
import type { ShardSnapshot, ShardState } from "./shard-snapshot.js";
import { SnapshotSchedule, snapshotMismatches } from "./shard-snapshot.js";
import { StepBarrier } from "./step-barrier.js";

/** The shard behind the data plane's port: its transports (TCP, gRPC, in-process) call only what ShardPort names. */
export class ParameterShard implements ShardPort {
  #config: ShardConfig | undefined;
  #params: Float32Array = new Float32Array(0);
  /** The step in progress writes its applied chunks here; it becomes #params when complete. */
  #next: Float32Array = new Float32Array(0);
  #optimizer: Optimizer | undefined;
  #chunks: Range[] = [];
  #version = 0;
  /** One buffer per rank, kept when the world shrinks (a transport may still be writing into one). */
  #contributions: Float32Array[] = [];
  #average: Float32Array = new Float32Array(0);
  readonly #barrier = new StepBarrier();
  /** Counts barrier resets, so that a failed push takes back only what it gave to the step still in progress. */
  #barrierEpoch = 0;
  readonly #async = new AsyncPushes(this.#barrier);
  readonly #generation = new ShardGeneration();
  #deadlines: DeadlineWatch | undefined;
  #revision = 0;
  /** The per-chunk list of what each rank contributed, reused. */
  #sources: Float32Array[] = [];
  #changed: Array<() => void> = [];
  #snapshots = new SnapshotSchedule();
  readonly #snapshotListeners = new Set<(snapshot: ShardSnapshot) => void>();
  readonly stats: ShardStats = { bytesIn: 0, bytesOut: 0, aggregationMs: 0 };

  get version(): number {
    return this.#version;
  }

  get config(): ShardConfig | undefined {
    return this.#config;
  }

  /** By rank of the open generation, the step deadlines missed in a row (deadline-watch.ts); none while closed, nor in async mode (nobody waits). */
  missedDeadlines(): number[] {
    return this.#generation.phase === "open" && !this.#isAsync ? (this.#deadlines?.missedDeadlines() ?? []) : [];
  }

  get #isAsync(): boolean {
    return this.#config?.mode === "async";
  }

  /** The generation of the latest ShardAssignment (0 before the first). */
  get generation(): number {
    return this.#generation.generation;
  }

  /** "closed" from a new generation's ShardAssignment until openGeneration: no push taken, no pull served. */
  get phase(): ShardPhase {
    return this.#generation.phase;
  }

  /**
   * Changes whenever values already handed out for some version may be replaced by other
   * values for the same version (a rollback computes the version again; a push rejected
   * part-way takes chunks back): caches keyed by version must start again.
   */
  get revision(): number {
    return this.#revision;
  }

  /**
   * Takes the coordinator's ShardAssignment. The first allocates the shard at version 0.
   * One of a new generation closes the shard: the step in progress is dropped, pushes are
   * refused and pulls wait until openGeneration(), and pulls of the generation before end
   * ABORTED. One repeating the current generation changes nothing. After any that closed
   * it, restore() may replace the shard's state.
   */
  configure(config: ShardConfig): void {
    const current = this.#config;
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
      const size = config.range.end - config.range.begin;
      // The hot buffers live in the kernel memory, where the WebAssembly kernels work.
      this.#params = kernelFloat32Array(size);
      this.#params.set(initialParameters(config.layout, config.seed, config.range.begin, config.range.end));
      this.#next = kernelFloat32Array(size);
      this.#optimizer = createOptimizer(config.optimizer, size);
      this.#deadlines = new DeadlineWatch(config.stepDeadlineMs ?? 60_000);
      this.#chunks = chunkRanges({ begin: 0, end: size }, config.chunkElements);
      // One chunk's average at a time: it is applied as soon as it is reduced.
      this.#average = kernelFloat32Array(Math.min(size, config.chunkElements));
      this.#snapshots = new SnapshotSchedule(config.checkpointEverySteps ?? 0, 0);
    }
    this.#config = config;
    this.#generation.take(config.generation);
    while (this.#contributions.length < config.worldSize) this.#contributions.push(kernelFloat32Array(this.#params.length));
    this.#resetBarrier();
    this.#notify();
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
    if (!this.#generation.opening(generation)) return;
    if (version !== this.#version && !this.#isAsync) this.#rollBack(version);
    this.#generation.open();
    this.#deadlines!.generationOpened(this.#config!.worldSize);
    this.#notify();
  }

  /** Back to version `to`, which the second buffers hold (ShardGeneration checks that they do). */
  #rollBack(to: number): void {
    this.#generation.rollBack(this.#version, to);
    [this.#params, this.#next] = [this.#next, this.#params];
    this.#optimizer!.rollback();
    this.#version = to;
    this.#snapshots.rolledBack(to);
    this.#revision++;
  }

  /**
   * Replaces the version, parameters and optimizer state with a checkpoint's (or the
   * seeded initial state's, initialShardState), whatever the shard held: only while it is
   * closed for a generation, before openGeneration (which then names this version). The
   * caller has checked that the snapshot is this shard's (readShardCheckpoint); what is
   * checked again here is what would corrupt it.
   */
  restore(snapshot: ShardState): void {
    const config = this.#requireConfig();
    const problems = snapshotMismatches(snapshot, { jobId: config.jobId, range: config.range, optimizer: this.#optimizer!.kind });
    if (this.#generation.phase === "open") {
      problems.push(
        `the shard is open for generation ${this.#generation.generation}, and pulls may be reading version ${this.#version}; restore after a new generation's ShardAssignment, before its open_generation`,
      );
    }
    if (problems.length > 0)
      throw new TrainfleetError(Code.FAILED_PRECONDITION, `cannot restore version ${snapshot.version}: ${problems.join("; ")}`);
    this.#params.set(snapshot.parameters);
    this.#optimizer!.restoreState(snapshot.state);
    this.#version = snapshot.version;
    this.#resetBarrier();
    this.#generation.restored();
    // Periodic snapshots go on from the restored version; requests made before it are void.
    this.#snapshots = new SnapshotSchedule(config.checkpointEverySteps ?? 0, snapshot.version);
    // Values handed out before for this version number were other values.
    this.#revision++;
    this.#notify();
  }

  /** A copy of the current version's slice and optimizer state, with the generation it was reached in. */
  snapshot(): ShardSnapshot {
    const config = this.#requireConfig();
    const optimizer = this.#optimizer!;
    return {
      jobId: config.jobId,
      version: this.#version,
      generation: this.#generation.reachedIn,
      range: { ...config.range },
      optimizer: optimizer.kind,
      parameters: this.#params.slice(),
      state: optimizer.state().map((values) => values.slice()),
    };
  }

  /** Calls `listener` with each scheduled snapshot, synchronously as its version is reached; returns the unsubscribe. */
  onSnapshot(listener: (snapshot: ShardSnapshot) => void): () => void {
    this.#snapshotListeners.add(listener);
    return () => this.#snapshotListeners.delete(listener);
  }

  /** The coordinator asks for a snapshot at `version`: taken now if the shard is there, else when it gets there. */
  requestSnapshot(version: number): void {
    this.#requireConfig();
    if (this.#snapshots.request(version, this.#version)) {
      this.#snapshots.taken(version);
      this.#emitSnapshot();
    }
  }

  /** Parameters of the current version, shard-local indexing (a live view: copy before awaiting; pulls use waitForVersion's values). */
  get parameters(): Float32Array {
    return this.#params;
  }

  get chunks(): readonly Range[] {
    return this.#chunks;
  }

  beginPush(): PushTransaction {
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
      const config = this.#requireConfig();
      const open = this.#generation.phase === "open";
      let state: "current" | "applied";
      if (this.#isAsync) {
        checkPushSource(config, open, chunk);
        state = this.#async.check(this.#version, config.maxStaleness ?? 0, chunk, header === undefined);
      } else {
        state = checkPushHeader(config, this.#version, open, chunk);
      }
      if (header === undefined) header = { rank: chunk.rank, step: chunk.step };
      else if (header.rank !== chunk.rank || header.step !== chunk.step) {
        throw invalidField(
          "step",
          `one push carries one (step, rank): began with (${header.step}, ${header.rank}), got (${chunk.step}, ${chunk.rank})`,
        );
      }
      const index = chunkIndexOf(config, chunk.offset, this.#chunks.length);
      const range = this.#chunks[index]!;
      checkChunkLength(chunk.offset, range.end - range.begin, chunk.byteLength);
      return { index, duplicate: state === "applied" || this.#barrier.isCommitted(chunk.rank, index) };
    };
    const transaction: PushTransaction = {
      reserve: (chunk) => {
        const { index, duplicate } = classify(chunk);
        this.stats.bytesIn += chunk.byteLength;
        if (duplicate) {
          if (discard === undefined || discard.byteLength < chunk.byteLength) discard = new Uint8Array(chunk.byteLength);
          return discard.subarray(0, chunk.byteLength);
        }
        const target = this.#contributions[chunk.rank]!;
        return new Uint8Array(target.buffer, target.byteOffset + this.#chunks[index]!.begin * 4, chunk.byteLength);
      },
      received: (chunk) => {
        const { index, duplicate } = classify(chunk);
        if (duplicate) {
          duplicates++;
          return;
        }
        const range = this.#chunks[index]!;
        checkFinite(this.#contributions[chunk.rank]!, range.begin, range.end, chunk.offset, this.#config!.layout, chunk);
        // Committed at once, so that the chunk is reduced while the rest is in flight.
        epoch ??= this.#barrierEpoch;
        rowEpoch ??= this.#barrier.rowResets(chunk.rank);
        this.#commit(chunk.rank, index);
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
        const range = this.#chunks[index]!;
        checkFinite(values, range.begin, range.end, chunk.offset, this.#config!.layout, chunk);
        epoch ??= this.#barrierEpoch;
        rowEpoch ??= this.#barrier.rowResets(chunk.rank);
        this.#commit(chunk.rank, index, values);
        committed.push(index);
      },
      commit: () => ({ chunksAccepted: committed.length, chunksDuplicate: duplicates, version: this.#version }),
      abort: () => {
        // Unless the barrier (in async mode, this rank's row) was reset since (the step
        // completed through a retry's chunks, or a new generation dropped it), the step this
        // push fed has not completed: what its chunks fed lives only in the step's second
        // buffers, and goes.
        if (header !== undefined && epoch === this.#barrierEpoch && rowEpoch === this.#barrier.rowResets(header.rank)) {
          for (const index of committed) if (this.#barrier.uncommit(header.rank, index)) this.#revision++;
        }
        committed.length = 0;
        this.#notify();
      },
    };
    return transaction;
  }

  /**
   * Resolves once the shard serves `jobId`, is open and at least at `minVersion`, with the
   * version and the generation the pull belongs to: the one the shard was open for when
   * the pull first found it open. A new generation's assignment before then ends the pull
   * ABORTED, and so does one during the reading that follows (checkServing).
   */
  async waitForVersion(jobId: string, minVersion: number, signal: AbortSignal): Promise<ServedVersion> {
    let generation: number | undefined;
    for (;;) {
      if (this.#servesJob(jobId)) {
        generation = this.#generation.pullGeneration(generation);
        if (generation !== undefined && this.#version >= minVersion)
          return { version: this.#version, generation, values: this.#isAsync ? this.#params.slice() : this.#params };
      }
      await this.#nextChange(signal);
    }
  }

  /** Throws ABORTED when what a pull is reading (from waitForVersion) has changed: a new generation was assigned, or (sync mode) the version moved. */
  checkServing(served: ServedVersion): void {
    this.#generation.pullGeneration(served.generation);
    // An async pull reads its own copy, which no later version touches.
    if (this.#version !== served.version && !this.#isAsync) {
      throw new TrainfleetError(Code.ABORTED, `version moved from ${served.version} to ${this.#version} during the pull; pull again`);
    }
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
  async streamParameters(
    jobId: string,
    minVersion: number,
    signal: AbortSignal,
    send: (chunk: number, version: number, values: Float32Array) => void,
  ): Promise<number> {
    let sent: Uint8Array | undefined;
    /** For each chunk sent before its step was whole, its retraction count then. */
    let sentEarly: Map<number, number> | undefined;
    let remaining = 0;
    let generation: number | undefined;
    for (;;) {
      if (this.#servesJob(jobId)) generation = this.#generation.pullGeneration(generation);
      if (generation !== undefined && this.#isAsync) {
        if (this.#version >= minVersion) {
          const version = this.#version;
          const values = this.#params.slice();
          for (let index = 0; index < this.#chunks.length; index++) send(index, version, values);
          return version;
        }
      } else if (generation !== undefined) {
        if (sent === undefined || sent.length !== this.#chunks.length) {
          sent = new Uint8Array(this.#chunks.length);
          remaining = this.#chunks.length;
        }
        const whole = this.#version >= minVersion;
        if (!whole && sentEarly !== undefined) this.#checkNotRetracted(sentEarly);
        if (whole || this.#version + 1 === minVersion) {
          const version = whole ? this.#version : this.#version + 1;
          const values = whole ? this.#params : this.#next;
          for (let index = 0; index < sent.length; index++) {
            if (sent[index] === 1 || (!whole && !this.#barrier.isApplied(index))) continue;
            sent[index] = 1;
            remaining--;
            if (!whole) (sentEarly ??= new Map()).set(index, this.#barrier.retractions(index));
            send(index, version, values);
          }
          if (remaining === 0) return version;
        }
      }
      await this.#nextChange(signal);
    }
  }

  /** A chunk handed out early was taken back by a push rejected part-way: what the reader has is void. */
  #checkNotRetracted(sentEarly: ReadonlyMap<number, number>): void {
    for (const [index, retractions] of sentEarly) {
      if (this.#barrier.retractions(index) !== retractions) {
        throw new TrainfleetError(
          Code.ABORTED,
          `chunk ${index} of the next version was taken back after it was sent (a push was rejected part-way); pull again once the step completes`,
        );
      }
    }
  }

  #servesJob(jobId: string): boolean {
    const config = this.#config;
    if (config !== undefined && config.jobId !== jobId) {
      throw new TrainfleetError(Code.FAILED_PRECONDITION, `job_id: this shard serves job "${config.jobId}", not "${jobId}"`, {
        field: "job_id",
      });
    }
    return config !== undefined;
  }

  #requireConfig(): ShardConfig {
    if (this.#config === undefined)
      throw new TrainfleetError(Code.UNAVAILABLE, "this shard has not been configured by the coordinator yet; retry shortly");
    return this.#config;
  }

  #commit(rank: number, index: number, lentSlice?: Float32Array): void {
    if (this.#isAsync) return this.#commitAsync(rank, index, lentSlice);
    const chunkComplete = this.#barrier.commit(rank, index, lentSlice);
    if (this.#barrier.hasAllChunks(rank)) this.#deadlines!.rankPushed(rank);
    if (!chunkComplete) return;
    // Reduce and apply each chunk as soon as every rank has it, overlapping with the
    // transfer of the rest; the results go to the second buffers until the step is whole.
    const started = performance.now();
    const chunk = this.#chunks[index]!;
    const sources = this.#sources;
    sources.length = this.#config!.worldSize;
    for (let r = 0; r < sources.length; r++) sources[r] = this.#barrier.source(r, index, this.#contributions[r]!);
    averageInRankOrder(sources, chunk.begin, chunk.end, this.#average);
    this.#generation.chunkApplied(this.#version);
    this.#optimizer!.apply(this.#params, this.#average, this.#next, chunk.begin, chunk.end, this.#version + 1);
    if (this.#barrier.markApplied(index)) {
      [this.#params, this.#next] = [this.#next, this.#params];
      this.#optimizer!.commit();
      this.#version++;
      this.#generation.stepCompleted();
      this.#deadlines!.stepApplied();
      this.#resetBarrier();
      if (this.#snapshots.due(this.#version)) this.#emitSnapshot();
    }
    this.stats.aggregationMs += performance.now() - started;
    this.#notify();
  }

  /** Async mode: once `rank` has every chunk, its gradient alone makes the next version. */
  #commitAsync(rank: number, index: number, lentSlice?: Float32Array): void {
    this.#barrier.commit(rank, index, lentSlice);
    if (!this.#barrier.hasAllChunks(rank)) return;
    const started = performance.now();
    this.#generation.chunkApplied(this.#version);
    applyRankGradient(
      this.#optimizer!,
      this.#params,
      this.#next,
      this.#chunks,
      this.#barrier,
      rank,
      this.#contributions[rank]!,
      this.#version + 1,
    );
    [this.#params, this.#next] = [this.#next, this.#params];
    this.#optimizer!.commit();
    this.#version++;
    this.#generation.stepCompleted();
    this.#async.applied(rank);
    this.#barrier.resetRank(rank);
    if (this.#snapshots.due(this.#version)) this.#emitSnapshot();
    this.stats.aggregationMs += performance.now() - started;
    this.#notify();
  }

  #resetBarrier(): void {
    this.#barrierEpoch++;
    this.#barrier.reset(this.#config?.worldSize ?? 0, this.#chunks.length);
    if (this.#isAsync) this.#async.reset(this.#config!.worldSize);
  }

  #emitSnapshot(): void {
    const snapshot = this.snapshot();
    for (const listener of this.#snapshotListeners) listener(snapshot);
  }

  #notify(): void {
    const waiters = this.#changed;
    this.#changed = [];
    for (const wake of waiters) wake();
  }

  #nextChange(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(TrainfleetError.from(signal.reason, Code.CANCELLED));
      const onAbort = () => {
        this.#changed = this.#changed.filter((w) => w !== wake);
        reject(TrainfleetError.from(signal.reason, Code.CANCELLED));
      };
      const wake = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#changed.push(wake);
    });
  }
}
