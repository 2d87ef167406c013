/**
 * What the coordinator process needs tf.js for, loaded only when it is needed (the other
 * roles, and a coordinator of a built-in job until it ends, start without it): pinning a
 * job's own model and dataset into its spec, and writing the trained model out.
 */
import type { Logger } from "@trainfleet/runtime";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { dataShape } from "@trainfleet/spec";
import type { BackendChoice } from "@trainfleet/worker";

/** The spec with its model's and dataset's files read and pinned (see pinJobArtifacts); a built-in job as it is. */
export async function pinArtifacts(spec: ResolvedJobSpec, backend: BackendChoice, logger: Logger): Promise<ResolvedJobSpec> {
  if (spec.model!.kind.case !== "layers" && spec.dataset!.manifest === "") return spec;
  const { pinJobArtifacts, selectBackend } = await import("@trainfleet/worker");
  await selectBackend(backend, logger);
  return pinJobArtifacts(spec);
}

/** Writes model.json and weights.bin of the trained parameters into `folder`, for stock tf.loadLayersModel. */
export async function writeModel(spec: ResolvedJobSpec, parameters: Float32Array, folder: string, logger: Logger): Promise<void> {
  const { buildModel, selectBackend, writeTrainedModel } = await import("@trainfleet/worker");
  await selectBackend("cpu", logger);
  const model = await buildModel(spec.model!, dataShape(spec.dataset!));
  try {
    const files = await writeTrainedModel(model, parameters, folder);
    logger.info({ files }, "trained model written");
  } finally {
    model.dispose();
  }
}
