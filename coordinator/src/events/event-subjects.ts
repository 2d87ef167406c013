/**
 * Where job events travel and how they are encoded: pure names and codecs shared by every
 * EventBus and by readers (`trainfleet events`). Events are hints; the status API is the truth.
 *
 *   trainfleet.jobs.<jobId>.events   JobEvent (protobuf binary), one per lifecycle change
 *   trainfleet.jobs.<jobId>.metrics  StepMetrics (protobuf binary), one per completed step
 *
 * The JetStream stream TRAINFLEET_JOBS takes `trainfleet.jobs.>` and keeps the history.
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { JobEvent, StepMetrics } from "@trainfleet/proto";
import { Code, JobEventSchema, StepMetricsSchema, TrainfleetError } from "@trainfleet/proto";

export const jobsStreamName = "TRAINFLEET_JOBS";
export const jobsSubjectPrefix = "trainfleet.jobs";
/** Every job's events and metrics: the stream's subjects. */
export const allJobsSubject = `${jobsSubjectPrefix}.>`;

export function eventsSubject(jobId: string): string {
  return `${jobsSubjectPrefix}.${jobId}.events`;
}

export function metricsSubject(jobId: string): string {
  return `${jobsSubjectPrefix}.${jobId}.metrics`;
}

/** Both subjects of one job, or of every job: one subject filter (NATS 2.9 consumers take one). */
export function jobFilterSubject(jobId?: string): string {
  return jobId === undefined ? allJobsSubject : `${jobsSubjectPrefix}.${jobId}.*`;
}

/** One message of the bus, decoded. */
export type BusMessage = { kind: "event"; subject: string; event: JobEvent } | { kind: "metrics"; subject: string; metrics: StepMetrics };

export function eventMessage(event: JobEvent): BusMessage {
  return { kind: "event", subject: eventsSubject(event.jobId), event };
}

export function metricsMessage(metrics: StepMetrics): BusMessage {
  return { kind: "metrics", subject: metricsSubject(metrics.jobId), metrics };
}

export function encodeBusMessage(message: BusMessage): Uint8Array {
  return message.kind === "event" ? toBinary(JobEventSchema, message.event) : toBinary(StepMetricsSchema, message.metrics);
}

/** Decodes a message by the last token of its subject; anything else is DATA_LOSS naming the subject. */
export function decodeBusMessage(subject: string, data: Uint8Array): BusMessage {
  const kind = subject.slice(subject.lastIndexOf(".") + 1);
  try {
    if (kind === "events") return { kind: "event", subject, event: fromBinary(JobEventSchema, data) };
    if (kind === "metrics") return { kind: "metrics", subject, metrics: fromBinary(StepMetricsSchema, data) };
  } catch (error) {
    throw new TrainfleetError(
      Code.DATA_LOSS,
      `a message on ${subject} is not a valid ${kind === "events" ? "JobEvent" : "StepMetrics"}: ${TrainfleetError.from(error).message}`,
      { cause: error },
    );
  }
  throw new TrainfleetError(Code.DATA_LOSS, `unexpected subject ${subject}: expected ${jobsSubjectPrefix}.<job>.events or .metrics`);
}
