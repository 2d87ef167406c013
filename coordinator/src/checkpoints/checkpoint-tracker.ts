/**
 * The coordinator's side of checkpoints: which versions it expects a checkpoint at (every
 * `everySteps` steps, and the just-in-time one on SIGTERM), the sample-ledger position at
 * each (recorded as the cursor passes it, since the cursor runs ahead of the shards), the
 * files the shards report, and the manifest written once every shard has reported. The
 * writing itself is injected (checkpoint-store.ts in a coordinator process).
 *
 * A shard takes its periodic snapshots by the same rule (paramserver/src/shard-snapshot.ts):
 * at every version v > the start version with v % everySteps === 0.
 *
 * A membership change that goes on from version v abandons whatever a shard reached past
 * v in the older generation (a shard that completed the abandoned step goes back): files of
 * versions above v reported from an older generation are dropped, and late ones ignored.
 */
import { relative } from "node:path";
import type { ReportCheckpointRequest } from "@trainfleet/proto";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import type { CursorPosition } from "../steps/sample-cursor.js";
import type { CheckpointManifest, CheckpointReason, ShardFile } from "./checkpoint-manifest.js";

export interface CheckpointTrackerOptions {
  folder: string;
  spec: ResolvedJobSpec;
  /** The current generation and its number of ranks, recorded in the manifest. */
  generation: () => { generation: number; worldSize: number };
  /** Each rank's compute backend, recorded in the manifest. */
  backends: () => string[];
  /** The shards' ranges, by index. */
  ranges: ReadonlyArray<{ begin: number; end: number }>;
  /** The version the job started or resumed at: no periodic checkpoint there. */
  startVersion: number;
  /** The checkpoint a resumed job started from. */
  last?: WrittenCheckpoint;
  /** Writes the manifest (and latest.json); resolves with its path. */
  write(manifest: CheckpointManifest): Promise<string>;
  /** Called when a checkpoint is complete (its manifest written). */
  onWritten?: (checkpoint: WrittenCheckpoint) => void;
  logger: Logger;
  now: () => number;
}

export interface WrittenCheckpoint {
  version: number;
  path: string;
  createdUnixMs: number;
}

interface Pending {
  ledger: CursorPosition;
  reason: CheckpointReason;
  files: Map<number, ShardFile>;
  written: Promise<string>;
  resolve(path: string): void;
  reject(error: TrainfleetError): void;
  settled: boolean;
}

export class CheckpointTracker {
  readonly #options: CheckpointTrackerOptions;
  readonly #pending = new Map<number, Pending>();
  /** Manifests are written one at a time, in the order their checkpoints complete. */
  #writes: Promise<unknown> = Promise.resolve();
  #last: WrittenCheckpoint | undefined;
  /** The newest generation opened and the version it went on from. */
  #opened = { generation: 0, version: 0 };

  constructor(options: CheckpointTrackerOptions) {
    this.#options = options;
    this.#last = options.last;
  }

  get folder(): string {
    return this.#options.folder;
  }

  /** The newest checkpoint this coordinator wrote. */
  get last(): WrittenCheckpoint | undefined {
    return this.#last;
  }

  /** The sample cursor now stands at `position`: if a periodic checkpoint is due there, expect it. */
  cursorAt(position: CursorPosition): void {
    const every = this.#options.spec.checkpoints?.everySteps ?? 0;
    if (every > 0 && position.step > this.#options.startVersion && position.step % every === 0) this.expect(position, "periodic");
  }

  /** Expects every shard to report a file of version `position.step`; resolves with the manifest's path once written. */
  expect(position: CursorPosition, reason: CheckpointReason): Promise<string> {
    // Written already (a periodic one at the version the job stops at): the shards will not write it again.
    if (this.#last?.version === position.step) return Promise.resolve(this.#last.path);
    const existing = this.#pending.get(position.step);
    if (existing !== undefined) {
      if (reason === "terminated") existing.reason = reason;
      return existing.written;
    }
    let resolve!: (path: string) => void;
    let reject!: (error: TrainfleetError) => void;
    const written = new Promise<string>((res, rej) => ([resolve, reject] = [res, rej]));
    // A periodic checkpoint that fails is logged below; nobody has to await it.
    written.catch(() => {});
    const pending: Pending = { ledger: { ...position }, reason, files: new Map(), written, resolve, reject, settled: false };
    pending.written.then(
      () => (pending.settled = true),
      () => (pending.settled = true),
    );
    this.#pending.set(position.step, pending);
    return written;
  }

  /** Generation `generation` goes on from `version`: what shards reached above it before is void. */
  generationOpened(generation: number, version: number): void {
    this.#opened = { generation, version };
    for (const [at, pending] of this.#pending) if (at > version) pending.files.clear();
  }

  /** A shard reported its file (or its failure) for a version. */
  report(shardIndex: number, request: ReportCheckpointRequest): void {
    const { version } = request;
    if (version > this.#opened.version && request.generation < this.#opened.generation) {
      this.#options.logger.info(
        { psShard: shardIndex, version, generation: request.generation },
        "a checkpoint slice of an abandoned step was reported; ignored (it is taken again)",
      );
      return;
    }
    const pending = this.#pending.get(version);
    if (pending === undefined) {
      this.#options.logger.warn(
        { psShard: shardIndex, version },
        "a checkpoint slice was reported for a version no checkpoint was expected at; ignored",
      );
      return;
    }
    if (request.error !== "") {
      this.#fail(version, pending, `shard ${shardIndex}: ${request.error}`);
      return;
    }
    const range = this.#options.ranges[shardIndex]!;
    const file = relative(this.#options.folder, request.path).startsWith("..")
      ? request.path
      : relative(this.#options.folder, request.path);
    pending.files.set(shardIndex, {
      index: shardIndex,
      begin: range.begin,
      end: range.end,
      file,
      sha256: request.sha256,
      bytes: Number(request.bytes),
    });
    if (pending.files.size < this.#options.ranges.length) return;
    const manifest: CheckpointManifest = {
      jobId: this.#options.spec.jobId,
      version,
      ...this.#options.generation(),
      backends: this.#options.backends(),
      ledger: pending.ledger,
      reason: pending.reason,
      createdUnixMs: this.#options.now(),
      shards: [...pending.files.values()].sort((a, b) => a.index - b.index),
      spec: this.#options.spec,
    };
    this.#writes = this.#writes.then(async () => {
      try {
        const path = await this.#options.write(manifest);
        this.#pending.delete(version);
        if (this.#last === undefined || version >= this.#last.version)
          this.#last = { version, path, createdUnixMs: manifest.createdUnixMs };
        this.#options.logger.info({ version, path, reason: manifest.reason }, "checkpoint written");
        this.#options.onWritten?.({ version, path, createdUnixMs: manifest.createdUnixMs });
        pending.resolve(path);
      } catch (error) {
        this.#fail(version, pending, `writing the manifest failed: ${TrainfleetError.from(error).message}`);
      }
    });
  }

  /** Resolves with the manifest's path once checkpoint `version` is written; rejects when it failed or after `timeoutMs`. */
  async waitFor(version: number, timeoutMs: number): Promise<string> {
    const pending = this.#pending.get(version);
    if (pending === undefined) {
      if (this.#last?.version === version) return this.#last.path;
      throw new TrainfleetError(Code.FAILED_PRECONDITION, `no checkpoint of version ${version} is expected`);
    }
    return this.#within(pending.written, pending, timeoutMs);
  }

  /** `written`, or a DEADLINE_EXCEEDED naming the shards still missing from `pending` after `timeoutMs`. */
  async #within(written: Promise<string>, pending: Pending | undefined, timeoutMs: number): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const missing = this.#options.ranges.map((_, index) => index).filter((index) => pending?.files.has(index) !== true);
        reject(
          new TrainfleetError(
            Code.DEADLINE_EXCEEDED,
            `no checkpoint slice from shard${missing.length === 1 ? "" : "s"} ${missing.join(", ")} within ${timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`}`,
          ),
        );
      }, timeoutMs);
    });
    try {
      return await Promise.race([written, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The just-in-time checkpoint when the job is told to stop: expects one at `position`
   * (where the shards will stop, as no more steps are handed out), calls `ask` to have the
   * shards write it, and waits at most `timeoutMs`, or until `ended` settles. Says what
   * happened, for the job's final message.
   */
  async takeOnStop(position: CursorPosition, timeoutMs: number, ask: (version: number) => void, ended: Promise<unknown>): Promise<string> {
    const version = position.step;
    const written = this.expect(position, "terminated");
    const pending = this.#pending.get(version);
    this.#options.logger.info(
      { version, waitMs: timeoutMs },
      "stopping: finishing the steps already handed out, then waiting for every shard's checkpoint slice",
    );
    ask(version);
    try {
      const endedFirst = ended.then(() => Promise.reject(new Error("the job ended first")));
      const path = await Promise.race([this.#within(written, pending, timeoutMs), endedFirst]);
      return `checkpoint of step ${version} written: ${path}. Resume with --resume ${this.#options.folder} (trainfleet run --resume takes the job folder)`;
    } catch (error) {
      const last = this.#last;
      const previous =
        last === undefined ? "there is no earlier checkpoint" : `the newest complete one is ${last.path} (step ${last.version})`;
      return `the checkpoint of step ${version} could not be made (${TrainfleetError.from(error).message}); ${previous}`;
    }
  }

  /** Waits (at most `timeoutMs`) for every expected checkpoint to be written or to fail. */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const version of [...this.#pending.keys()]) {
      try {
        await this.waitFor(version, Math.max(0, deadline - Date.now()));
      } catch {
        // Logged where it failed; a timed-out one is logged here.
        if (this.#pending.get(version)?.settled === false)
          this.#options.logger.warn({ version }, "a checkpoint was still incomplete when the job ended");
      }
    }
  }

  #fail(version: number, pending: Pending, why: string): void {
    this.#pending.delete(version);
    this.#options.logger.error({ version }, `checkpoint of version ${version} failed: ${why}`);
    pending.reject(new TrainfleetError(Code.ABORTED, why));
  }
}
