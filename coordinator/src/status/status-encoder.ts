/**
 * The job's status, built and serialised once per change for every HTTP reader alike.
 * With N event-stream watchers a change used to be turned into JSON N times, so 500
 * watchers starved the event loop (GET /v1/jobs/ID took over 10 s); now the first reader
 * of a revision builds the JobStatus, its proto JSON and its server-sent event, and every
 * other watcher writes the same bytes (one Buffer, referenced by each socket's queue, not
 * copied).
 *
 * A GET reuses the current revision's JSON while it is younger than `maxAgeMs`: heartbeat
 * times move without a new revision, so a GET may see them at most that old. A finished job's
 * status never moves again.
 */
import type { JobPhase, JobStatus } from "@trainfleet/proto";
import { isFinished, jobStatusToJson } from "@trainfleet/proto";
import { formatServerSentEvent } from "@trainfleet/runtime";
import type { StatusSource } from "./status-watch.js";

export interface EncodedStatus {
  revision: number;
  status: JobStatus;
  /** The JobStatus as one line of proto JSON. */
  json: string;
  /** The `status` event of the event stream (id: revision), as written to every watcher. */
  event: Buffer;
}

export interface StatusEncoderOptions {
  /** How old a GET's status may be when the revision has not moved. Default 1 s. */
  maxAgeMs?: number;
  now?: () => number;
}

/** A StatusSource whose status() is the shared, once-built status of the current revision. */
export class StatusEncoder implements StatusSource {
  readonly #source: StatusSource;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #current: (EncodedStatus & { at: number }) | undefined;
  #serialisations = 0;

  constructor(source: StatusSource, options: StatusEncoderOptions = {}) {
    this.#source = source;
    this.#maxAgeMs = options.maxAgeMs ?? 1_000;
    this.#now = options.now ?? Date.now;
  }

  get revision(): number {
    return this.#source.revision;
  }

  get phase(): JobPhase {
    return this.#source.phase;
  }

  changedSince(revision: number, signal: AbortSignal): Promise<void> {
    return this.#source.changedSince(revision, signal);
  }

  status(): JobStatus {
    return this.current().status;
  }

  /** How many times a status has been serialised (once per revision watched, plus GETs of an aged one). */
  get serialisations(): number {
    return this.#serialisations;
  }

  /** The current revision's status, built and serialised by its first reader only. */
  current(): EncodedStatus {
    const revision = this.#source.revision;
    return this.#current?.revision === revision ? this.#current : this.#encode(revision);
  }

  /**
   * The current status for a one-off read (GET): the shared one unless it is older than
   * maxAgeMs. A finished job's status is final: a lingering coordinator serves it as it was
   * sent, not with the heartbeats of members on their way out.
   */
  fresh(): EncodedStatus {
    const current = this.current();
    if (isFinished(current.status.phase)) return current;
    return this.#now() - this.#current!.at <= this.#maxAgeMs ? current : this.#encode(current.revision);
  }

  #encode(revision: number): EncodedStatus {
    const status = this.#source.status();
    const json = JSON.stringify(jobStatusToJson(status));
    const event = Buffer.from(formatServerSentEvent({ id: String(revision), event: "status", data: json }), "utf8");
    this.#serialisations++;
    this.#current = { revision, status, json, event, at: this.#now() };
    return this.#current;
  }
}
