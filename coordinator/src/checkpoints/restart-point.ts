/**
 * What a coordinator process starts from: an explicit checkpoint (--resume), the state a
 * predecessor saved for a job still running (a restart: the same spec, back to the newest
 * checkpoint of its folder, or to the start when there is none), or the job it was given.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { equals } from "@bufbuild/protobuf";
import { Code, JobSpecSchema, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { latestCheckpointFileName } from "@trainfleet/spec";
import type { CoordinatorState } from "../state/coordinator-state.js";
import type { StateStore } from "../state/state-store.js";
import type { LoadedCheckpoint } from "./checkpoint-store.js";
import { loadCheckpoint } from "./checkpoint-store.js";

export interface StartPoint {
  spec: ResolvedJobSpec | undefined;
  resume: LoadedCheckpoint | undefined;
  checkpointDir: string | undefined;
  /** Set when this process takes over a running job from a predecessor that died. */
  restartedAt: { generation: number } | undefined;
}

/** `stores`: where a predecessor may have saved its state, in order (NATS KV, then the checkpoint folder's file); the first that holds one counts. */
export async function startPoint(
  given: { spec: ResolvedJobSpec | undefined; resume: LoadedCheckpoint | undefined; checkpointDir: string | undefined },
  stores: readonly StateStore[],
  logger: Logger,
): Promise<StartPoint> {
  let saved: CoordinatorState | undefined;
  let store: StateStore | undefined;
  for (const candidate of given.resume === undefined ? stores : []) {
    saved = await candidate.load();
    store = candidate;
    if (saved !== undefined) break;
  }
  if (saved === undefined) return { ...given, restartedAt: undefined };
  if (given.spec !== undefined && given.spec.jobId !== saved.jobId) {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `${store!.description} holds the state of job "${saved.jobId}", not "${given.spec.jobId}"; give this job a state of its own (--state-file)`,
    );
  }
  // A run of the job that ended is history: this is a new run (its state is overwritten).
  if (saved.finished) {
    logger.info({ state: store!.description }, `an earlier run of job "${saved.jobId}" finished; this is a new run`);
    return { ...given, restartedAt: undefined };
  }
  if (given.spec !== undefined && !equals(JobSpecSchema, given.spec, saved.spec)) {
    logger.warn({ state: store!.description }, "the job flags differ from the running job's spec; the running job's spec is kept");
  }
  const checkpointDir = given.checkpointDir ?? (saved.checkpointDir === "" ? undefined : saved.checkpointDir);
  const resume =
    checkpointDir !== undefined && existsSync(join(checkpointDir, latestCheckpointFileName))
      ? await loadCheckpoint(checkpointDir)
      : undefined;
  logger.warn(
    { jobId: saved.jobId, generation: saved.generation, checkpoint: resume?.path, state: store!.description },
    `the coordinator restarted while job "${saved.jobId}" was running; it goes on from ${resume === undefined ? "the start (there is no checkpoint)" : `its checkpoint of step ${resume.manifest.version}`} once its members are back`,
  );
  return { spec: saved.spec, resume, checkpointDir, restartedAt: { generation: saved.generation } };
}
