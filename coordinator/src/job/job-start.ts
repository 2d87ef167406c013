/**
 * What a job starts with once its shards and first workers are in (start-gate.ts): its
 * RunPlan, that is the plan (plan.ts), the sample cursor, the step tracker and the
 * checkpoint tracker, at step 0 or at the checkpoint it resumes from. The generation cycle
 * (generations/generation-cycle.ts) then opens the first generation on it.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ShardRestore, ShardRestoreSchema } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import type { LoadedCheckpoint } from "../checkpoints/checkpoint-store.js";
import { writeCheckpoint } from "../checkpoints/checkpoint-store.js";
import type { WrittenCheckpoint } from "../checkpoints/checkpoint-tracker.js";
import { CheckpointTracker } from "../checkpoints/checkpoint-tracker.js";
import { resumePoint } from "../checkpoints/resume-point.js";
import type { Member } from "../membership/members.js";
import type { StatusPlan } from "../status/job-status.js";
import { SampleCursor } from "../steps/sample-cursor.js";
import { StepTracker } from "../steps/step-tracker.js";
import { planJob } from "./plan.js";

/** A shard restore to the job's seeded initial parameters (no checkpoint to go back to). */
export const initialRestore = { path: "", version: 0, sha256: "" } as const;

/** A started job's plan and where it stands. `workers` and `generation` are the current generation's. */
export interface RunPlan extends StatusPlan {
  samples: SampleCursor;
  /** Each shard's checkpoint file to start from (a resumed or rolled-back job); sent with the next generation only. */
  restores: Array<MessageInitShape<typeof ShardRestoreSchema> | ShardRestore> | undefined;
  /** The version the job started at (0, or the checkpoint's). */
  startVersion: number;
}

export interface StartOptions {
  spec: ResolvedJobSpec;
  /** Shard i at index i. */
  shards: readonly Member[];
  /** The workers of the first generation, by rank (for the backends a resume compares). */
  workers: readonly Member[];
  checkpointDir: string | undefined;
  resume: LoadedCheckpoint | undefined;
  logger: Logger;
  now: () => number;
  /** Called when a checkpoint's manifest is written. */
  onCheckpoint: (written: WrittenCheckpoint) => void;
  /** Set when this coordinator took over the running job of one that died: the generation its predecessor had begun. */
  restartedAt?: { generation: number } | undefined;
}

/** The plan of a job about to start; throws (FAILED_PRECONDITION) when the checkpoint to resume from does not fit it. */
export function startJob(options: StartOptions): RunPlan {
  const { spec, checkpointDir, logger, now } = options;
  const jobPlan = planJob(spec, options.shards);
  const notExact = spec.model!.kind.case === "layers" ? (spec.model!.kind.value.artifact?.notExact ?? []) : [];
  // Said once here and kept in the status (not_exact): a user comparing two runs must know not to expect equal bits.
  if (notExact.length > 0) logger.warn({ reasons: notExact }, "this job's model does not train bit-exactly");
  const backends = options.workers.map((worker) => worker.backend);
  const resume =
    options.resume === undefined ? undefined : resumePoint(options.resume, jobPlan, backends, (message) => logger.warn({}, message));
  const start = resume?.version ?? 0;
  const restarted = options.restartedAt;
  const plan: RunPlan = {
    ...jobPlan,
    spec,
    // A restarted coordinator's generations go on above its predecessor's.
    generation: restarted?.generation ?? 0,
    workers: [],
    tracker: new StepTracker(0, now, start),
    samples: new SampleCursor(
      spec.training!.seed,
      jobPlan.data.trainRecords,
      jobPlan.globalBatchSize,
      resume?.position,
      jobPlan.sampleOrder,
    ),
    checkpoints: undefined,
    // After a restart the shards hold whatever they had reached: every one goes back to the checkpoint (or the start).
    restores: resume?.restores ?? (restarted === undefined ? undefined : options.shards.map(() => initialRestore)),
    startVersion: start,
  };
  if (checkpointDir !== undefined) {
    const resumed =
      resume === undefined ? {} : { last: { version: start, path: options.resume!.path, createdUnixMs: resume.createdUnixMs } };
    plan.checkpoints = new CheckpointTracker({
      folder: checkpointDir,
      spec,
      generation: () => ({ generation: plan.generation, worldSize: plan.workers.length }),
      backends: () => plan.workers.map((worker) => worker.backend),
      ranges: jobPlan.shardRanges.map((range) => ({ begin: Number(range.begin), end: Number(range.end) })),
      startVersion: start,
      ...resumed,
      write: (manifest) => writeCheckpoint(checkpointDir, manifest),
      onWritten: options.onCheckpoint,
      logger,
      now,
    });
  }
  return plan;
}
