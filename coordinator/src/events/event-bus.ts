/**
 * Where the coordinator publishes its job events and per-step metrics. Two implementations
 * keep this one interface: NATS (nats-event-bus.ts) and in-process (in-process-event-bus.ts).
 * Publishing never blocks and never throws: a bus queues, logs and goes on, because events
 * are hints and must never stop a job.
 */
import type { JobEvent, StepMetrics } from "@trainfleet/proto";

export interface EventBus {
  publishEvent(event: JobEvent): void;
  publishMetrics(metrics: StepMetrics): void;
  /** Sends what is queued (waiting at most timeoutMs) and lets go of the connection. */
  close(timeoutMs?: number): Promise<void>;
}
