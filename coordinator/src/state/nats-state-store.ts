/**
 * The coordinator's state in NATS JetStream KV, for a coordinator that may come back on
 * another machine (a rescheduled pod): one key per job (the job id) in a bucket shared
 * by all coordinators, created on first use with file storage and history 1 (only the
 * newest record matters). A put is one JetStream publish: the server acknowledges it once
 * stored (and replicated, in a cluster), so a record is never half there. A put that timed
 * out while the server was away may still land once nats.js reconnects; any later save
 * lands after it, so the newest record wins.
 */

import { jetstream, StorageType } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { connect } from "@nats-io/transport-node";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { natsConnectOptions } from "../events/nats-connect-options.js";
import { fromNatsError } from "../events/nats-errors.js";
import type { CoordinatorState } from "./coordinator-state.js";
import { parseCoordinatorState } from "./coordinator-state.js";
import type { StateStore } from "./state-store.js";
import { encodeState, SerialTasks } from "./state-store.js";

export const defaultStateBucket = "trainfleet_coordinators";

export interface NatsStateStoreOptions {
  /** nats://host:port (several may be given, comma-separated). */
  url: string;
  /** The job whose state this is: the key. */
  jobId: string;
  /** The KV bucket (default "trainfleet_coordinators"). */
  bucket?: string;
  /** How long a connection attempt and each KV request may take (default 5000 ms). */
  timeoutMs?: number;
}

/** Connects and opens (or creates) the bucket; fails with UNAVAILABLE naming the URL when NATS cannot be reached. */
export async function natsStateStore(options: NatsStateStoreOptions): Promise<StateStore> {
  const { url, jobId, bucket = defaultStateBucket, timeoutMs = 5_000 } = options;
  // KV's own rules (kv.js validKeyRe/validBucketRe), checked here so that the error names the field.
  if (!/^[-\w]+$/.test(bucket))
    throw new TrainfleetError(
      Code.INVALID_ARGUMENT,
      `bucket: "${bucket}" is not a NATS KV bucket name (letters, digits, "-" and "_" only)`,
      { field: "bucket" },
    );
  if (!/^[-/=\w]+(\.[-/=\w]+)*$/.test(jobId))
    throw new TrainfleetError(
      Code.INVALID_ARGUMENT,
      `jobId: "${jobId}" cannot be a NATS KV key (letters, digits, "-", "_", "/", "=", inner ".")`,
      { field: "jobId" },
    );
  // Credentials in the URL go to nats.js as user/pass or token; messages show the URL without them.
  const { connect: connectOptions, shown } = natsConnectOptions(url);
  const description = `NATS KV ${bucket}/${jobId} at ${shown}`;
  let connection: NatsConnection;
  try {
    // Once connected, nats.js reconnects by itself; a save meanwhile fails after timeoutMs.
    connection = await connect({
      ...connectOptions,
      name: "trainfleet-coordinator-state",
      timeout: timeoutMs,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1_000,
    });
  } catch (error) {
    const cause = fromNatsError(error, `cannot reach NATS at ${shown} to keep the coordinator's state`);
    throw new TrainfleetError(
      cause.code,
      `${cause.message}; start one with JetStream on (nats-server -js), or leave out the NATS URL to keep the state in a local file`,
      { cause: error },
    );
  }
  let kv: KV;
  try {
    kv = await new Kvm(jetstream(connection, { timeout: timeoutMs })).create(bucket, { history: 1, storage: StorageType.File });
  } catch (error) {
    await connection.close().catch(() => {});
    const cause = fromNatsError(error, `cannot open or create the KV bucket ${bucket} on NATS at ${shown}`);
    // Reached but refusing (most often a server without JetStream): the server's setup is wrong, not its availability.
    const code = cause.code === Code.UNKNOWN ? Code.FAILED_PRECONDITION : cause.code;
    throw new TrainfleetError(code, `${cause.message}; the server must run with JetStream on (nats-server -js)`, { cause: error });
  }
  return new NatsStateStore(description, jobId, timeoutMs, connection, kv);
}

class NatsStateStore implements StateStore {
  readonly description: string;
  readonly #jobId: string;
  readonly #timeoutMs: number;
  readonly #connection: NatsConnection;
  readonly #kv: KV;
  readonly #tasks: SerialTasks;
  #closing: Promise<void> | undefined;

  constructor(description: string, jobId: string, timeoutMs: number, connection: NatsConnection, kv: KV) {
    this.description = description;
    this.#jobId = jobId;
    this.#timeoutMs = timeoutMs;
    this.#connection = connection;
    this.#kv = kv;
    this.#tasks = new SerialTasks(description);
  }

  load(): Promise<CoordinatorState | undefined> {
    return this.#tasks.run(async () => {
      const entry = await this.#kv.get(this.#jobId).catch((error: unknown) => {
        throw this.#failure(error, "cannot read the coordinator state from");
      });
      // A deleted or purged key reads as an entry with no value.
      if (entry === null || entry.operation !== "PUT") return undefined;
      return parseCoordinatorState(entry.string(), this.description, this.#jobId);
    });
  }

  save(state: CoordinatorState): Promise<void> {
    return this.#tasks.run(async () => {
      const bytes = encodeState(state, this.description, this.#jobId);
      await this.#kv.put(this.#jobId, bytes).catch((error: unknown) => {
        throw this.#failure(error, "cannot save the coordinator state to");
      });
    });
  }

  #failure(error: unknown, doing: string): TrainfleetError {
    const failure = fromNatsError(error, `${doing} ${this.description}`);
    if (failure.code !== Code.DEADLINE_EXCEEDED) return failure;
    // A server that went away shows as a bare "timeout": say what that means.
    return new TrainfleetError(
      failure.code,
      `${failure.message} (no answer within ${this.#timeoutMs} ms: is the server up and JetStream running?)`,
      { cause: error },
    );
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    await this.#tasks.close();
    // close(), not drain(): every put has been acknowledged (or has failed) by now, so
    // nothing is left to send, and drain() fails while the server is away.
    await this.#connection.close().catch((error: unknown) => {
      throw fromNatsError(error, `closing ${this.description}`);
    });
  }
}
