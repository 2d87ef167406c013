/**
 * A submitted job's start, once its members are in (start-gate.ts): its RunPlan is made
 * (job-start.ts; a checkpoint to resume from that does not fit it fails the job with
 * reason ResumeFailed), the parts that follow its steps are told of it, and its generation
 * cycle is made, whose first generation the coordinator then begins.
 */
import { JobEventKind, TrainfleetError } from "@trainfleet/proto";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import type { LoadedCheckpoint } from "../checkpoints/checkpoint-store.js";
import type { JobEventRecorder } from "../events/job-event-recorder.js";
import type { GenerationCycleOptions } from "../generations/generation-cycle.js";
import { GenerationCycle } from "../generations/generation-cycle.js";
import type { WorkerFailures } from "../membership/worker-failures.js";
import type { CoordinatorMetrics } from "../status/coordinator-metrics.js";
import type { DownsampledSeries } from "../status/downsampled-series.js";
import type { LedgerAudit } from "../steps/ledger-audit.js";
import { stepCompletion } from "../steps/step-completion.js";
import type { JobEnd } from "./job-end.js";
import type { RunPlan } from "./job-start.js";
import { startJob } from "./job-start.js";
import { startingMembers, workersToStart } from "./start-gate.js";

export interface LaunchOptions extends Omit<GenerationCycleOptions, "plan" | "resumedFrom"> {
  spec: ResolvedJobSpec;
  end: Pick<JobEnd, "fail" | "evaluation" | "started">;
  metrics: Pick<CoordinatorMetrics, "generationChanged" | "stepCompleted">;
  resume: LoadedCheckpoint | undefined;
  restartedAt: { generation: number } | undefined;
  /** When the first worker registered. */
  firstWorkerAt: number | undefined;
  ledgerAudit: LedgerAudit | undefined;
  /** Told of each completed step (step-completion.ts). */
  failures: WorkerFailures;
  lossHistory: DownsampledSeries;
  events: JobEventRecorder | undefined;
}

/** The started job's generation cycle, or none when it cannot start yet (or failed to). */
export function launchJob(options: LaunchOptions): GenerationCycle | undefined {
  const { spec, members, lifecycle, end, logger, now, restartedAt, ledgerAudit, resume } = options;
  const needed = workersToStart(spec.workers!, restartedAt !== undefined, options.firstWorkerAt, now(), options.leaseMs);
  const start = startingMembers(spec, members.shards(), members.liveWorkers(), needed);
  if (start === undefined) return undefined;
  let plan: RunPlan;
  try {
    const onCheckpoint = (written: { version: number; path: string }) =>
      lifecycle.publish({ kind: JobEventKind.CHECKPOINT_WRITTEN, step: written.version, checkpointPath: written.path });
    plan = startJob({
      spec,
      shards: start.shards,
      workers: start.ranked,
      checkpointDir: options.checkpointDir,
      resume,
      logger,
      now,
      onCheckpoint,
      restartedAt,
    });
  } catch (error) {
    end.fail("ResumeFailed", TrainfleetError.from(error).message);
    return undefined;
  }
  lifecycle.started(plan);
  end.started(plan);
  plan.tracker.onStepComplete = stepCompletion({
    plan,
    failures: options.failures,
    ledgerAudit,
    lossHistory: options.lossHistory,
    metrics: options.metrics,
    events: options.events,
  });
  if (restartedAt !== undefined) ledgerAudit?.rewindTo(plan.startVersion);
  return new GenerationCycle({ ...options, plan, resumedFrom: resume?.path });
}
