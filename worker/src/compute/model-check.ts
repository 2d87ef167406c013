/**
 * What a model must be for trainfleet to train it on a dataset, checked once when it is
 * built, each refusal naming the layer or shape and the fix: one input and one output
 * (for now), an input that takes the dataset's features, an output that fits its labels
 * and the loss, float32 weights. Also why a model's training would not be bit-exact.
 */
import type * as tfl from "@tensorflow/tfjs-layers";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { DataShape } from "@trainfleet/spec";
import { featureSize } from "@trainfleet/spec";
import type { ModelLoss } from "./losses.js";
import { isCrossEntropy } from "./losses.js";

export interface ModelInterface {
  /** One sample's input as the model takes it: the dataset's feature shape, or its flattening. */
  inputShape: number[];
  /** One sample's output: [values]. */
  outputShape: number[];
}

function refuse(describe: string, problem: string): TrainfleetError {
  return new TrainfleetError(Code.FAILED_PRECONDITION, `${describe}: ${problem}`, { field: "spec.model" });
}

export function checkInterface(model: tfl.LayersModel, data: DataShape, describe: string): ModelInterface {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw refuse(
      describe,
      `it has ${model.inputs.length} inputs and ${model.outputs.length} outputs; trainfleet trains models with one input and one output, for now`,
    );
  }
  const modelInput = model.inputs[0]!.shape.slice(1);
  const features = data.featureShape;
  const size = featureSize(data);
  const sameShape = modelInput.length === features.length && modelInput.every((d, i) => d === null || d === features[i]);
  const flat = modelInput.length === 1 && (modelInput[0] === null || modelInput[0] === size);
  if (!sameShape && !flat) {
    throw refuse(
      describe,
      `its input takes [${modelInput.map(String).join(", ")}] per sample, but the dataset's features have shape [${features.join(", ")}]: ` +
        `give the model's first layer inputShape [${features.join(", ")}] (or [${size}], flattened)`,
    );
  }
  const output = model.outputs[0]!.shape.slice(1);
  if (output.length !== 1 || output[0] === null) {
    throw refuse(
      describe,
      `its output has shape [${output.map(String).join(", ")}] per sample; trainfleet needs one vector per sample, e.g. [classes]`,
    );
  }
  if (model.trainableWeights.length === 0) throw refuse(describe, "it has no trainable weights: there is nothing to train");
  for (const weight of model.trainableWeights) {
    if (weight.dtype !== "float32")
      throw refuse(describe, `its weight ${weight.originalName} is ${weight.dtype}; trainfleet trains float32 weights`);
  }
  return { inputShape: sameShape ? [...features] : [size], outputShape: [output[0] as number] };
}

/** The output must give what the loss compares with the dataset's labels. */
export function checkOutput(outputs: number, loss: ModelLoss, data: DataShape, describe: string): void {
  const what = `the loss ${loss.name} (from ${loss.source})`;
  if (loss.name === "module") return;
  if (isCrossEntropy(loss.name)) {
    if (data.classes === 0) {
      throw refuse(
        describe,
        `${what} needs class labels, but the dataset's labels are ${data.labelSize} values per sample: use meanSquaredError`,
      );
    }
    if (outputs !== data.classes) {
      throw refuse(
        describe,
        `its output gives ${outputs} values per sample, but the dataset has ${data.classes} classes: give the output layer ${data.classes} units`,
      );
    }
    return;
  }
  if (loss.name === "binaryCrossentropy") {
    if (data.classes > 2) {
      throw refuse(
        describe,
        `${what} needs labels 0 and 1, but the dataset has ${data.classes} classes: use sparseCategoricalCrossentropy`,
      );
    }
    const expected = data.classes === 2 ? 1 : data.labelSize;
    if (outputs !== expected) {
      throw refuse(
        describe,
        `its output gives ${outputs} values per sample; ${what} on this dataset needs ${expected}: give the output layer ${expected} units`,
      );
    }
    return;
  }
  const expected = data.classes > 0 ? data.classes : data.labelSize;
  if (outputs !== expected) {
    const labels = data.classes > 0 ? `${data.classes} classes (one-hot targets)` : `${data.labelSize} values per label`;
    throw refuse(
      describe,
      `its output gives ${outputs} values per sample, but the dataset has ${labels}: give the output layer ${expected} units`,
    );
  }
}

const randomLayers = new Set(["Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout"]);

/** Why training this model is not bit-exact: one reason per layer that trains with randomness or batch statistics. */
export function notExactReasons(model: tfl.LayersModel): string[] {
  const reasons: string[] = [];
  const visit = (layers: tfl.layers.Layer[]) => {
    for (const layer of layers) {
      const className = layer.getClassName();
      if (randomLayers.has(className)) {
        reasons.push(`layer ${layer.name} (${className}) draws random noise while training, which differs from run to run`);
      } else if (className === "BatchNormalization") {
        reasons.push(
          `layer ${layer.name} (BatchNormalization) normalises with the statistics of each worker's slice of the batch, ` +
            "so results depend on how the batch is split; its moving mean and variance follow rank 0",
        );
      }
      const nested = (layer as { layers?: tfl.layers.Layer[] }).layers;
      if (Array.isArray(nested)) visit(nested);
    }
  };
  visit(model.layers);
  return reasons;
}
