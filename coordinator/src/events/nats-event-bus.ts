/**
 * The event bus on NATS: JobEvents and StepMetrics as protobuf on
 * trainfleet.jobs.<job>.events / .metrics, and the JetStream stream TRAINFLEET_JOBS that
 * keeps them (created, or updated to these limits, on connect; NATS 2.9 features only).
 *
 * Publishing never blocks or throws. Until the first connection (and the stream) is made,
 * messages wait in a bounded queue, in order; a server that cannot be reached is logged
 * and tried again with backoff while the job goes on. Once connected, reconnecting is
 * nats.js's job (it buffers what is published meanwhile).
 */

import type { StreamConfig } from "@nats-io/jetstream";
import { DiscardPolicy, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { connect, nanos } from "@nats-io/transport-node";
import type { JobEvent, StepMetrics } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { abortableDelay } from "@trainfleet/runtime";
import type { EventBus } from "./event-bus.js";
import type { BusMessage } from "./event-subjects.js";
import { allJobsSubject, encodeBusMessage, eventMessage, jobFilterSubject, jobsStreamName, metricsMessage } from "./event-subjects.js";
import { natsConnectOptions } from "./nats-connect-options.js";
import { fromNatsError, isStreamNotFound } from "./nats-errors.js";

export interface NatsEventBusOptions {
  /** nats://host:port (several may be given, comma-separated); credentials as userinfo (nats-connect-options.ts), never logged. */
  url: string;
  logger: Logger;
  /** How long the stream keeps a message (default 7 days). */
  maxAgeMs?: number;
  /** The stream's size limit; the oldest messages go first (default 1 GiB). */
  maxBytes?: number;
  /** Messages held while NATS cannot be reached; beyond it the oldest are dropped (default 100000). */
  maxQueued?: number;
  /** First wait between connection attempts, doubled up to 30 s (default 500 ms). */
  retryMs?: number;
  /**
   * A job that starts afresh under this id: the stream's messages of earlier runs of it are
   * purged before anything is sent, so that its history is this run's (none: keep all; a
   * resumed job keeps its history).
   */
  freshJobId?: string | undefined;
}

interface Outgoing {
  subject: string;
  data: Uint8Array;
}

const defaults = { maxAgeMs: 7 * 24 * 3600 * 1000, maxBytes: 1024 ** 3, maxQueued: 100_000, retryMs: 500 };

/** The stream's configuration: every job's subjects, limits by age and size, oldest discarded. */
export function jobsStreamConfig(maxAgeMs: number, maxBytes: number): Partial<StreamConfig> & { name: string } {
  return {
    name: jobsStreamName,
    subjects: [allJobsSubject],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(maxAgeMs),
    max_bytes: maxBytes,
  };
}

export function createNatsEventBus(options: NatsEventBusOptions): EventBus {
  return new NatsEventBus({ ...defaults, ...options });
}

class NatsEventBus implements EventBus {
  readonly #options: Omit<Required<NatsEventBusOptions>, "freshJobId"> & Pick<NatsEventBusOptions, "freshJobId">;
  readonly #logger: Logger;
  readonly #queue: Outgoing[] = [];
  readonly #stop = new AbortController();
  readonly #connected: Promise<void>;
  #connection: NatsConnection | undefined;
  #dropped = 0;

  constructor(options: Omit<Required<NatsEventBusOptions>, "freshJobId"> & Pick<NatsEventBusOptions, "freshJobId">) {
    this.#options = options;
    this.#logger = options.logger.child({ nats: natsConnectOptions(options.url).shown });
    this.#connected = this.#connect();
  }

  publishEvent(event: JobEvent): void {
    this.#send(eventMessage(event));
  }

  publishMetrics(metrics: StepMetrics): void {
    this.#send(metricsMessage(metrics));
  }

  async close(timeoutMs = 5_000): Promise<void> {
    this.#stop.abort();
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    const expired = new Promise<"expired">((resolve) =>
      deadline.signal.addEventListener("abort", () => resolve("expired"), { once: true }),
    );
    try {
      // A connection attempt in flight may still succeed and send the queue.
      await Promise.race([this.#connected, expired]);
      const connection = this.#connection;
      if (connection === undefined) {
        if (this.#queue.length > 0)
          this.#logger.warn({ unsent: this.#queue.length }, "NATS was never reached: these job events and metrics were not published");
        return;
      }
      // drain() sends everything published, then closes.
      const drained = await Promise.race([
        connection.drain().then(
          () => "drained" as const,
          (error: unknown) => fromNatsError(error, "draining the NATS connection"),
        ),
        expired,
      ]);
      if (drained !== "drained") {
        this.#logger.warn(
          { err: drained === "expired" ? `not done after ${timeoutMs} ms` : drained.message },
          "could not send every job event to NATS before closing",
        );
        await connection.close().catch(() => {});
      }
    } finally {
      clearTimeout(timer);
      deadline.abort();
    }
  }

  #send(message: BusMessage): void {
    const outgoing = { subject: message.subject, data: encodeBusMessage(message) };
    const connection = this.#connection;
    if (connection === undefined) return this.#enqueue(outgoing);
    try {
      connection.publish(outgoing.subject, outgoing.data);
    } catch (error) {
      // Closed or draining: nothing more will go out on this connection.
      if (this.#dropped++ === 0)
        this.#logger.warn(
          { err: fromNatsError(error, "publishing").message },
          "could not publish to NATS; dropping job events (the job goes on)",
        );
    }
  }

  #enqueue(outgoing: Outgoing): void {
    this.#queue.push(outgoing);
    if (this.#queue.length <= this.#options.maxQueued) return;
    this.#queue.shift();
    if (this.#dropped++ === 0)
      this.#logger.warn(
        { maxQueued: this.#options.maxQueued },
        "NATS still unreachable and the event queue is full: dropping the oldest events",
      );
  }

  /** Connects (with backoff until it works or the bus closes), makes the stream, then sends the queue. */
  async #connect(): Promise<void> {
    const { retryMs } = this.#options;
    const { connect: auth, shown } = natsConnectOptions(this.#options.url);
    const signal = this.#stop.signal;
    for (let attempt = 1; ; attempt++) {
      let connection: NatsConnection;
      try {
        connection = await connect({
          ...auth,
          name: "trainfleet-coordinator",
          maxReconnectAttempts: -1,
          reconnectTimeWait: 1_000,
        });
      } catch (error) {
        const problem = fromNatsError(error, `cannot reach NATS at ${shown}`).message;
        if (attempt === 1)
          this.#logger.warn({ err: problem }, "cannot reach NATS: job events are queued and the connection retried; the job goes on");
        else this.#logger.debug({ err: problem, attempt }, "NATS still unreachable");
        if (signal.aborted) return;
        const wait = Math.min(30_000, retryMs * 2 ** Math.min(attempt - 1, 16));
        if (
          !(await abortableDelay(wait, signal).then(
            () => true,
            () => false,
          ))
        )
          return;
        continue;
      }
      await this.#ensureStream(connection);
      this.#connection = connection;
      // Synchronously, so nothing published meanwhile can overtake the queue.
      for (const outgoing of this.#queue.splice(0)) connection.publish(outgoing.subject, outgoing.data);
      this.#logger.info({ server: connection.getServer(), attempts: attempt }, "publishing job events to NATS");
      void this.#watch(connection);
      return;
    }
  }

  async #ensureStream(connection: NatsConnection): Promise<void> {
    const config = jobsStreamConfig(this.#options.maxAgeMs, this.#options.maxBytes);
    try {
      const manager = await jetstreamManager(connection, { timeout: 5_000 });
      try {
        await manager.streams.info(jobsStreamName);
        await manager.streams.update(jobsStreamName, config);
      } catch (error) {
        if (!isStreamNotFound(error)) throw error;
        await manager.streams.add(config);
      }
      const fresh = this.#options.freshJobId;
      if (fresh !== undefined) {
        const { purged } = await manager.streams.purge(jobsStreamName, { filter: jobFilterSubject(fresh) });
        if (purged > 0)
          this.#logger.info({ jobId: fresh, purged }, "a new run of this job: its earlier runs' events were purged from the stream");
      }
    } catch (error) {
      this.#logger.warn(
        { err: fromNatsError(error, `JetStream stream ${jobsStreamName}`).message },
        "could not create or update the JetStream stream: events are published but no history is kept",
      );
    }
  }

  /** Logs the connection's ups and downs; nats.js reconnects by itself. */
  async #watch(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) {
      if (status.type === "disconnect")
        this.#logger.warn({ server: status.server }, "lost the NATS connection; reconnecting (job events are buffered meanwhile)");
      else if (status.type === "reconnect") this.#logger.info({ server: status.server }, "reconnected to NATS");
      else if (status.type === "error") this.#logger.warn({ err: status.error.message }, "NATS reported an error");
    }
  }
}
