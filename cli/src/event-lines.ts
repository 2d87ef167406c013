/** How `trainfleet events` prints a job event or a step's metrics: one readable line, or one JSON line. */
import { toJson } from "@bufbuild/protobuf";
import type { BusMessage } from "@trainfleet/coordinator";
import type { JobEvent, StepMetrics } from "@trainfleet/proto";
import { JobEventKind, JobEventSchema, JobPhase, MemberRole, StepMetricsSchema } from "@trainfleet/proto";

/** `{"subject": ..., "event": JobEvent}` or `{"subject": ..., "metrics": StepMetrics}`, as proto JSON. */
export function busMessageJson(message: BusMessage): string {
  const body =
    message.kind === "event" ? { event: toJson(JobEventSchema, message.event) } : { metrics: toJson(StepMetricsSchema, message.metrics) };
  return JSON.stringify({ subject: message.subject, ...body });
}

export function busMessageLine(message: BusMessage): string {
  return message.kind === "event" ? eventLine(message.event) : metricsLine(message.metrics);
}

export function eventLine(event: JobEvent): string {
  const time = new Date(Number(event.unixMs)).toISOString();
  const kind = (JobEventKind[event.kind] ?? String(event.kind)).toLowerCase().replaceAll("_", " ");
  const parts = [`${time} ${event.jobId} #${event.sequence} ${kind}`, `phase ${JobPhase[event.phase] ?? event.phase}`];
  if (event.kind === JobEventKind.MEMBER_JOINED || event.kind === JobEventKind.MEMBER_LOST) parts.push(memberText(event));
  // A worker that failed before registering has no member id: the message names its host.
  if (event.kind === JobEventKind.MEMBER_FAILED && event.memberId !== "") parts.push(memberText(event));
  if (event.kind === JobEventKind.CHECKPOINT_WRITTEN) parts.push(`step ${event.step}: ${event.checkpointPath}`);
  else if (event.step > 0) parts.push(`step ${event.step}`);
  if (event.testAccuracy !== undefined)
    parts.push(`test accuracy ${(event.testAccuracy * 100).toFixed(2)}% (loss ${(event.testLoss ?? 0).toFixed(4)})`);
  const why = [event.reason, event.message].filter((text) => text !== "").join(": ");
  return `${parts.join(", ")}${why === "" ? "" : ` - ${why}`}`;
}

export function metricsLine(metrics: StepMetrics): string {
  const time = new Date(Number(metrics.unixMs)).toISOString();
  const rate = Math.round(metrics.samplesPerSecond).toLocaleString("en-US");
  return `${time} ${metrics.jobId} step ${metrics.step} epoch ${metrics.epoch + 1} loss ${metrics.loss.toFixed(4)} ${rate} samples/s ${metrics.stepTimeMs.toFixed(1)} ms/step`;
}

function memberText(event: JobEvent): string {
  if (event.memberRole === MemberRole.PARAMETER_SERVER) return `parameter-server shard ${event.shardIndex} (${event.memberId})`;
  return `worker ${event.memberId}${event.rank >= 0 ? ` rank ${event.rank}` : ""}`;
}
