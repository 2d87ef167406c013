/**
 * What each completed step updates besides the step tracker: worker failures count again
 * from it (worker-failures.ts), the ledger audit records the samples it consumed, the loss
 * history and the Prometheus metrics take it in, and a StepMetrics event carries it with
 * every rank's timings. The tracker calls it, in step order (StepTracker.onStepComplete).
 */
import type { JobEventRecorder } from "../events/job-event-recorder.js";
import type { RunPlan } from "../job/job-start.js";
import type { WorkerFailures } from "../membership/worker-failures.js";
import type { CoordinatorMetrics } from "../status/coordinator-metrics.js";
import type { DownsampledSeries } from "../status/downsampled-series.js";
import type { LedgerAudit } from "./ledger-audit.js";
import type { CompletedStep } from "./step-tracker.js";

export interface StepCompletionOptions {
  plan: RunPlan;
  failures: Pick<WorkerFailures, "progressed">;
  ledgerAudit: LedgerAudit | undefined;
  /** The training loss of every completed step (JobStatus.loss_history). */
  lossHistory: DownsampledSeries;
  metrics: Pick<CoordinatorMetrics, "stepCompleted">;
  /** None: no StepMetrics are published. */
  events: JobEventRecorder | undefined;
}

/** The handler for the plan's StepTracker.onStepComplete. */
export function stepCompletion(options: StepCompletionOptions): (step: CompletedStep) => void {
  const { plan, failures, ledgerAudit, lossHistory, metrics, events } = options;
  const jobId = plan.spec.jobId;
  return (step) => {
    // Progress: worker failures count again from here (worker-failures.ts).
    failures.progressed(step.completed);
    ledgerAudit?.completed(step.completed - 1);
    // A step that a membership change settled before any rank reported it has no loss.
    if (!Number.isNaN(step.loss)) lossHistory.add(step.completed, step.loss);
    metrics.stepCompleted(jobId, step.samples, step.at);
    if (events === undefined || Number.isNaN(step.loss)) return;
    const workers = plan.workers.map((w) => ({
      memberId: w.id,
      rank: w.rank,
      computeMs: w.timing.computeMs,
      communicateMs: w.timing.communicateMs,
    }));
    const epoch = Math.floor((step.completed - 1) / plan.stepsPerEpoch);
    events.metrics(
      {
        jobId,
        generation: plan.generation,
        step: step.completed,
        epoch,
        loss: step.loss,
        samples: step.samples,
        samplesPerSecond: plan.tracker.samplesPerSecond(),
        workers,
      },
      step.at,
    );
  };
}
