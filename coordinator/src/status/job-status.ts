/**
 * The JobStatus message, assembled from the coordinator's state: one pure function, so
 * that GetJob, WatchJob, the HTTP API and the dashboard all read the same thing.
 */
import { create } from "@bufbuild/protobuf";
import type { JobStatus } from "@trainfleet/proto";
import { JobPhase, JobStatusSchema } from "@trainfleet/proto";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import type { CheckpointTracker } from "../checkpoints/checkpoint-tracker.js";
import type { JobPlan } from "../job/plan.js";
import { parameterServerStatus, workerStatus } from "../membership/member-status.js";
import type { Member } from "../membership/members.js";
import type { StepTracker } from "../steps/step-tracker.js";
import type { SeriesPointValue } from "./downsampled-series.js";

/** A started job's plan as the status needs it. */
export interface StatusPlan extends JobPlan {
  spec: ResolvedJobSpec;
  /** The current generation (0 before the first opens) and its ranks: workers[r] has rank r. */
  generation: number;
  workers: Member[];
  tracker: StepTracker;
  checkpoints: CheckpointTracker | undefined;
}

export interface StatusState {
  spec: ResolvedJobSpec | undefined;
  phase: JobPhase;
  reason: string;
  message: string;
  plan: StatusPlan | undefined;
  workers: readonly Member[];
  shards: readonly Member[];
  testAccuracy: number | undefined;
  testLoss: number | undefined;
  startedAt: number;
  finishedAt: number;
  lossHistory: SeriesPointValue[];
  /** While paused below min_workers: when the job fails; 0 otherwise. */
  pauseDeadline: number;
  /** Fatal worker failures reported since the last completed step (worker-failures.ts). */
  workerFailures: number;
}

export function jobStatus(state: StatusState): JobStatus {
  const { spec, plan, testAccuracy, testLoss } = state;
  const tracker = plan?.tracker;
  const completed = tracker?.completed ?? 0;
  const perEpoch = plan?.stepsPerEpoch ?? 1;
  return create(JobStatusSchema, {
    jobId: spec?.jobId ?? "",
    phase: state.phase,
    reason: state.reason,
    message: state.message,
    generation: plan?.generation ?? 0,
    epoch: Math.min(Math.floor(completed / perEpoch), (spec?.training?.epochs ?? 1) - 1),
    epochs: spec?.training?.epochs ?? 0,
    step: completed,
    totalSteps: plan?.totalSteps ?? 0,
    loss: tracker?.lastLoss ?? Number.NaN,
    samplesPerSecond: tracker?.samplesPerSecond() ?? 0,
    workers: state.workers.map(workerStatus),
    shards: plan?.shardRanges ?? [],
    ...(testAccuracy === undefined ? {} : { testAccuracy }),
    ...(testLoss === undefined ? {} : { testLoss }),
    startedUnixMs: BigInt(state.startedAt),
    finishedUnixMs: BigInt(state.finishedAt),
    parameterCount: BigInt(plan?.layout.parameterCount ?? 0),
    lossHistory: state.lossHistory,
    accuracyHistory: testAccuracy === undefined || plan === undefined ? [] : [{ step: plan.totalSteps, value: testAccuracy, steps: 1 }],
    ...eta(plan, state.phase),
    parameterServers: state.shards.map(parameterServerStatus),
    ...lastCheckpoint(plan),
    pauseDeadlineUnixMs: BigInt(state.pauseDeadline),
    workerFailures: state.workerFailures,
    notExact: spec?.model?.kind.case === "layers" ? (spec.model.kind.value.artifact?.notExact ?? []) : [],
  });
}

/** Remaining steps x global batch / samples per second, while training and once a rate is known. */
function eta(plan: StatusPlan | undefined, phase: JobPhase): { etaSeconds?: number } {
  const rate = plan?.tracker.samplesPerSecond() ?? 0;
  if (plan === undefined || phase !== JobPhase.RUNNING || rate <= 0) return {};
  return { etaSeconds: ((plan.totalSteps - plan.tracker.completed) * plan.globalBatchSize) / rate };
}

/** The newest complete checkpoint (written by this coordinator, or the one it resumed from). */
function lastCheckpoint(plan: StatusPlan | undefined): { lastCheckpointVersion?: number; lastCheckpointUnixMs?: bigint } {
  const last = plan?.checkpoints?.last;
  return last === undefined ? {} : { lastCheckpointVersion: last.version, lastCheckpointUnixMs: BigInt(last.createdUnixMs) };
}
