/**
 * A fine-tuned job starts from its Layers model's weights, not from seeded ones: each shard
 * reads the artifact (checked against the digest pinned in the spec) and keeps only its own
 * range of the flattened trainable weights, in the layout's order.
 */
import type { SourceOptions } from "@trainfleet/artifacts";
import { readLayersArtifact, redactUri, weightValues } from "@trainfleet/artifacts";
import type { JobSpec } from "@trainfleet/proto";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { ParameterLayout, Range } from "@trainfleet/spec";

/** Elements [range.begin, range.end) of the model's weights; undefined when the job starts from seeded parameters. */
export async function modelWeightsSlice(
  spec: JobSpec,
  layout: ParameterLayout,
  range: Range,
  sources?: SourceOptions,
): Promise<Float32Array | undefined> {
  const model = spec.model!.kind;
  if (model.case !== "layers" || model.value.artifact?.hasWeights !== true) return undefined;
  const { uri, sha256, artifact: pinned } = model.value;
  const artifact = await readLayersArtifact(uri, { sha256: sha256 || undefined, sources });
  if (artifact.digest !== pinned.digest) {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `spec.model.layers: the model ${redactUri(uri)} changed since the job was pinned to it (sha256 ${pinned.digest.slice(0, 12)}..., now ${artifact.digest.slice(0, 12)}...)`,
    );
  }
  const values = weightValues(artifact);
  const out = new Float32Array(range.end - range.begin);
  for (const tensor of layout.tensors) {
    const from = Math.max(range.begin, tensor.offset);
    const to = Math.min(range.end, tensor.offset + tensor.size);
    if (from >= to) continue;
    const weights = values.get(tensor.name);
    if (weights === undefined || weights.length !== tensor.size) {
      throw new TrainfleetError(
        Code.FAILED_PRECONDITION,
        `spec.model.layers: ${redactUri(uri)} has ${weights === undefined ? "no weight" : `${weights.length} values for the weight`} "${tensor.name}", the layout ${tensor.size}`,
      );
    }
    out.set(weights.subarray(from - tensor.offset, to - tensor.offset), from - range.begin);
  }
  return out;
}
