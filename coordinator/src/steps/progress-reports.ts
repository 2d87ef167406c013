/**
 * A rank's report that it completed a step (ReportProgress): its step and timings go into
 * its status and the metrics, the step tracker counts it, and once steps complete more are
 * handed out (or the evaluation starts: step-dispatch.ts). What each completed step
 * updates besides is in step-completion.ts.
 */
import type { ReportProgressRequest } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import type { JobLifecycle } from "../job/job-lifecycle.js";
import type { RunPlan } from "../job/job-start.js";
import type { Member } from "../membership/members.js";
import { recordTiming } from "../membership/step-timing.js";
import type { CoordinatorMetrics } from "../status/coordinator-metrics.js";
import type { StepDispatch } from "./step-dispatch.js";

export interface ProgressContext {
  lifecycle: JobLifecycle;
  dispatch: Pick<StepDispatch, "afterSteps">;
  metrics: Pick<CoordinatorMetrics, "progressReported">;
  logger: Logger;
}

/** `member` has a rank in `plan`'s open generation, which the report is for (GenerationCycle.current). */
export function takeProgressReport(member: Member, plan: RunPlan, request: ReportProgressRequest, context: ProgressContext): void {
  member.lastStep = Math.max(member.lastStep, request.step);
  // A report from a worker of an older version carries none.
  member.bytesRead = Number(request.bytesRead ?? 0);
  recordTiming(member.timing, request.computeMs, request.communicateMs);
  context.metrics.progressReported(plan.spec.jobId, member.id, request.computeMs, request.communicateMs);
  const advanced = plan.tracker.report({ rank: member.rank, step: request.step, loss: request.loss, samples: request.samples });
  if (advanced === 0) return;
  context.logger.debug({ step: plan.tracker.completed, loss: plan.tracker.lastLoss }, "step complete");
  context.dispatch.afterSteps(plan);
  context.lifecycle.changed();
}
