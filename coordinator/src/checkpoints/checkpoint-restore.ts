/**
 * Where every shard goes back to when a running job loses state it cannot rebuild (a lost
 * shard's slice): the newest checkpoint the job wrote, each file checked again, or the
 * seeded initial parameters when there is none yet.
 */
import type { Logger } from "@trainfleet/runtime";
import type { RunPlan } from "../job/job-start.js";
import { initialRestore } from "../job/job-start.js";
import { loadCheckpoint } from "./checkpoint-store.js";
import { resumePoint } from "./resume-point.js";

export interface GoBack {
  /** The version (steps complete) the job goes on from. */
  version: number;
  restores: NonNullable<RunPlan["restores"]>;
  /** For messages: "its checkpoint of step K", or "step 0". */
  description: string;
}

/** Throws (naming the file) when the checkpoint no longer loads or fits the plan. */
export async function goBackPoint(plan: RunPlan, logger: Logger): Promise<GoBack> {
  const last = plan.checkpoints?.last;
  if (last === undefined) return { version: 0, restores: plan.shardRanges.map(() => initialRestore), description: "step 0" };
  const warn = (message: string) => logger.warn({}, message);
  const { restores } = resumePoint(
    await loadCheckpoint(last.path),
    plan,
    plan.workers.map((worker) => worker.backend),
    warn,
  );
  return { version: last.version, restores, description: `its checkpoint of step ${last.version}` };
}
