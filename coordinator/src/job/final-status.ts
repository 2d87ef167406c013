/**
 * The job's final status beside its trained model: `status.json` in the output folder, the
 * JobStatus the job ended with as the status API serves it (GET /v1/jobs/ID; read it back with
 * jobStatusFromJson), written whole (temp file, fsync, rename) once the coordinator has ended
 * the job, Succeeded or Failed. It outlives the process: in Kubernetes the coordinator's pod
 * is deleted once the job has ended, with the status API it served.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { JobStatus } from "@trainfleet/proto";
import { jobStatusToJson } from "@trainfleet/proto";
import { writeAtomically } from "@trainfleet/runtime";

export const finalStatusFile = "status.json";

export async function writeFinalStatus(folder: string, status: JobStatus): Promise<string> {
  await mkdir(folder, { recursive: true });
  const path = join(folder, finalStatusFile);
  await writeAtomically(path, new TextEncoder().encode(`${JSON.stringify(jobStatusToJson(status), null, 2)}\n`));
  return path;
}
