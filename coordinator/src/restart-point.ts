/**
 * What a coordinator process starts from: an explicit checkpoint (--resume), the state a
 * predecessor saved for a job still running (a restart: the same spec, back to the newest
 * checkpoint of its folder, or to the start when there is none), or the job it was given.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { equals } from "@bufbuild/protobuf";
import { Code, JobSpecSchema, TrainfleetError, latestCheckpointFileName } from "@trainfleet/proto";
import type { JobSpec, Logger } from "@trainfleet/proto";
import { loadCheckpoint } from "./checkpoint-store.js";
import type { LoadedCheckpoint } from "./checkpoint-store.js";
import type { CoordinatorState, StateStore } from "./state/index.js";

export interface StartPoint {
  spec: JobSpec | undefined;
  resume: LoadedCheckpoint | undefined;
  checkpointDir: string | undefined;
  /** Set when this process takes over a running job from a predecessor that died. */
  restartedAt: { generation: number } | undefined;
}

export async function startPoint(given: { spec: JobSpec | undefined; resume: LoadedCheckpoint | undefined; checkpointDir: string | undefined }, store: StateStore | undefined, logger: Logger): Promise<StartPoint> {
  const saved: CoordinatorState | undefined = given.resume === undefined ? await store?.load() : undefined;
  if (saved === undefined) return { ...given, restartedAt: undefined };
  if (given.spec !== undefined && given.spec.jobId !== saved.jobId) {
    throw new TrainfleetError(Code.FAILED_PRECONDITION, `${store!.description} holds the state of job "${saved.jobId}", not "${given.spec.jobId}"; give this job a state of its own (--state-file)`);
  }
  if (saved.finished) {
    throw new TrainfleetError(Code.FAILED_PRECONDITION, `job "${saved.jobId}" has already finished (${store!.description}); remove that state to run it again`);
  }
  if (given.spec !== undefined && !equals(JobSpecSchema, given.spec, saved.spec)) {
    logger.warn({ state: store!.description }, "the job flags differ from the running job's spec; the running job's spec is kept");
  }
  const checkpointDir = given.checkpointDir ?? (saved.checkpointDir === "" ? undefined : saved.checkpointDir);
  const resume = checkpointDir !== undefined && existsSync(join(checkpointDir, latestCheckpointFileName)) ? await loadCheckpoint(checkpointDir) : undefined;
  logger.warn(
    { jobId: saved.jobId, generation: saved.generation, checkpoint: resume?.path, state: store!.description },
    `the coordinator restarted while job "${saved.jobId}" was running; it goes on from ${resume === undefined ? "the start (there is no checkpoint)" : `its checkpoint of step ${resume.manifest.version}`} once its members are back`,
  );
  return { spec: saved.spec, resume, checkpointDir, restartedAt: { generation: saved.generation } };
}
