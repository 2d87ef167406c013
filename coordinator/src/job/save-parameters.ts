/**
 * Writes the trained parameters out of the shards into a folder: `parameters.f32` (the
 * flattened vector, little-endian float32) and `parameters.json` (the layout to read it
 * with, the version and the spec), then the trained model as model.json and weights when
 * the caller gives a writer. The folder is made when missing; each file is written whole
 * (writeAtomically: temp file, fsync, rename).
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { toJson } from "@bufbuild/protobuf";
import { createParameterClient, float32Bytes, shardEndpoint } from "@trainfleet/dataplane";
import type { TransportSecurity } from "@trainfleet/proto";
import { JobSpecSchema } from "@trainfleet/proto";
import { writeAtomically } from "@trainfleet/runtime";
import type { TrainedJob } from "./job-end.js";

export interface SaveOptions {
  writeModel?: ((spec: TrainedJob["spec"], parameters: Float32Array, folder: string) => Promise<void>) | undefined;
  /** The coordinator's own credentials: the shards serve its final pull over mutual TLS. */
  security?: TransportSecurity | undefined;
}

export async function saveParameters(folder: string, job: TrainedJob, { writeModel, security }: SaveOptions = {}): Promise<void> {
  const parameters = new Float32Array(job.layout.parameterCount);
  const shards = job.shards.map(shardEndpoint);
  const { chunkBytes, dataPlane } = job.spec.parameterServers!;
  // float32 whatever the job's wire format: the saved parameters are the shards' own.
  const client = createParameterClient({ jobId: job.spec.jobId, shards, chunkBytes, dataPlane, security });
  try {
    const version = await client.pull(job.version, parameters, { timeoutMs: 60_000 });
    // The job's own folder on a shared volume (Kubernetes' spec.output) exists only once a job has written there.
    await mkdir(folder, { recursive: true });
    await writeAtomically(join(folder, "parameters.f32"), float32Bytes(parameters));
    const description = {
      jobId: job.spec.jobId,
      version,
      parameterCount: job.layout.parameterCount,
      tensors: job.layout.tensors.map(({ name, shape, offset }) => ({ name, shape, offset })),
      spec: toJson(JobSpecSchema, job.spec),
    };
    await writeAtomically(join(folder, "parameters.json"), new TextEncoder().encode(`${JSON.stringify(description, null, 2)}\n`));
    await writeModel?.(job.spec, parameters, folder);
  } finally {
    client.close();
  }
}
