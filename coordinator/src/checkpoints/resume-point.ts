/**
 * Where a job resumed from a checkpoint starts: the sample cursor's position, the steps
 * already complete, and each shard's file to restore. Pure: checks that the checkpoint
 * fits the plan the coordinator made for the same spec (errors name the manifest).
 */
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { JobPlan } from "../job/plan.js";
import type { CursorPosition } from "../steps/sample-cursor.js";
import type { LoadedCheckpoint } from "./checkpoint-store.js";

export interface ResumePoint {
  version: number;
  position: CursorPosition;
  /** restores[i]: shard i's file. */
  restores: Array<{ path: string; version: number; sha256: string }>;
  createdUnixMs: number;
}

/** `backends`: the workers' compute backends by rank; `warn` hears when they differ from the checkpoint's. */
export function resumePoint(
  checkpoint: LoadedCheckpoint,
  plan: JobPlan,
  backends: readonly string[],
  warn: (message: string) => void,
): ResumePoint {
  const { manifest, path } = checkpoint;
  const mismatch = (problem: string) =>
    new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `checkpoint manifest ${path}: ${problem}; resume with the job's own spec and shard layout`,
    );
  if (manifest.shards.length !== plan.shardRanges.length)
    throw mismatch(`it has ${manifest.shards.length} shard files, the job ${plan.shardRanges.length} shards`);
  manifest.shards.forEach((shard, index) => {
    const range = plan.shardRanges[index]!;
    if (BigInt(shard.begin) !== range.begin || BigInt(shard.end) !== range.end) {
      throw mismatch(`shard ${index} holds [${shard.begin}, ${shard.end}), the plan gives it [${range.begin}, ${range.end})`);
    }
  });
  if (manifest.version > plan.totalSteps) throw mismatch(`it is of step ${manifest.version}, past the job's ${plan.totalSteps} steps`);
  if (manifest.backends.length > 0 && manifest.backends.join() !== backends.join()) {
    warn(
      `the checkpoint was taken with compute backends ${manifest.backends.join(", ")} (by rank), the workers now use ${backends.join(", ")}: training continues exactly from the checkpoint, but its results will not be bitwise those of an uninterrupted run on the first backends (choose them with --backend, and the same number of workers)`,
    );
  }
  return {
    version: manifest.version,
    position: manifest.ledger,
    restores: manifest.shards.map((shard, index) => ({ path: checkpoint.files[index]!, version: manifest.version, sha256: shard.sha256 })),
    createdUnixMs: manifest.createdUnixMs,
  };
}
