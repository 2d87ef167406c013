/**
 * A job folder of an earlier `trainfleet run`, to resume: its spec.json and its newest
 * checkpoint (checkpoints/latest.json), every checkpoint file checked against its sha256
 * before anything starts.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { equals } from "@bufbuild/protobuf";
import type { LoadedCheckpoint } from "@trainfleet/coordinator";
import { Code, JobSpecSchema, TrainfleetError } from "@trainfleet/proto";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { loadJobSpec } from "./job-flags.js";

export interface ResumableJob {
  folder: string;
  /** The job folder's spec.json, resolved (checked) here: the spec the resumed run takes. */
  spec: ResolvedJobSpec;
  checkpoint: LoadedCheckpoint;
}

export async function resumableJob(folder: string): Promise<ResumableJob> {
  const specPath = join(folder, "spec.json");
  if (!existsSync(specPath))
    throw new TrainfleetError(Code.NOT_FOUND, `--resume ${folder}: not the job folder of a trainfleet run (it has no spec.json)`);
  const spec = await loadJobSpec(specPath);
  // Loaded here, not at the top: `trainfleet run` without --resume need not load the coordinator.
  const { loadCheckpoint } = await import("@trainfleet/coordinator");
  const checkpoint = await loadCheckpoint(join(folder, "checkpoints"));
  if (!equals(JobSpecSchema, checkpoint.manifest.spec, spec)) {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `--resume ${folder}: ${specPath} and the checkpoint ${checkpoint.path} describe different jobs; restore the job's own spec.json`,
    );
  }
  return { folder, spec, checkpoint };
}
