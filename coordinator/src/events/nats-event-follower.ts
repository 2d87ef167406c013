/**
 * Reads job events and metrics from NATS, for `trainfleet events` and for tests: live
 * messages from a core subscription, or with fromStart the stream's history first (a
 * JetStream ordered consumer), then live ones, in the order they were published.
 */

import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { connect } from "@nats-io/transport-node";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { BusMessage } from "./event-subjects.js";
import { decodeBusMessage, jobFilterSubject, jobsStreamName } from "./event-subjects.js";
import { natsConnectOptions } from "./nats-connect-options.js";
import { fromNatsError, isStreamNotFound } from "./nats-errors.js";

export interface FollowJobEventsOptions {
  url: string;
  /** Only this job's subjects; all jobs when absent. */
  jobId?: string | undefined;
  /** Replay the TRAINFLEET_JOBS stream's history first. */
  fromStart?: boolean;
  /** Called once the subscription (or consumer) is in place: later messages are not missed. */
  onReady?: () => void;
  signal: AbortSignal;
}

/** Every message in order until the signal aborts or the caller stops iterating; the connection is closed either way. */
export async function* followJobEvents(options: FollowJobEventsOptions): AsyncGenerator<BusMessage> {
  const { signal } = options;
  // Credentials as the URL's userinfo go to nats.js as such, and never into a message.
  const { connect: auth, shown: url } = natsConnectOptions(options.url);
  let connection: NatsConnection;
  try {
    connection = await connect({ ...auth, name: "trainfleet-events", maxReconnectAttempts: -1 });
  } catch (error) {
    throw fromNatsError(error, `cannot reach NATS at ${url}`);
  }
  const subject = jobFilterSubject(options.jobId);
  const stops: Array<() => void> = [];
  const onAbort = () => stops.forEach((stop) => stop());
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    let messages: AsyncIterable<{ subject: string; data: Uint8Array }>;
    if (options.fromStart === true) {
      const consumer = await jetstream(connection)
        .consumers.get(jobsStreamName, { filter_subjects: subject, deliver_policy: DeliverPolicy.All })
        .catch((error: unknown) => {
          if (isStreamNotFound(error))
            throw new TrainfleetError(
              Code.NOT_FOUND,
              `NATS at ${url} has no stream ${jobsStreamName}: no coordinator with --nats-url has published there yet`,
              { cause: error },
            );
          throw fromNatsError(error, `reading the stream ${jobsStreamName}`);
        });
      const consumed = await consumer.consume();
      stops.push(() => void consumed.stop());
      messages = consumed;
    } else {
      const subscription = connection.subscribe(subject);
      stops.push(() => subscription.unsubscribe());
      messages = subscription;
    }
    await connection.flush();
    if (signal.aborted) return;
    options.onReady?.();
    for await (const message of messages) yield decodeBusMessage(message.subject, message.data);
  } finally {
    signal.removeEventListener("abort", onAbort);
    onAbort();
    await connection.close().catch(() => {});
  }
}
