/**
 * The built-in models (spec.model.mlp and spec.model.cnn) as the tf.js Layers models they
 * are, so they reach the same compiler and plans as a user's model.json. Layer names
 * (dense0, conv0, ..., output) give the parameter layout's tensor names (dense0/kernel,
 * ...), in the order of spec's parameterLayout.
 */
import * as tfl from "@tensorflow/tfjs-layers";
import type { ModelSpec } from "@trainfleet/proto";
import { invalidField } from "@trainfleet/proto";
import type { DataShape } from "@trainfleet/spec";

type MlpSpec = Extract<ModelSpec["kind"], { case: "mlp" }>["value"];
type CnnSpec = Extract<ModelSpec["kind"], { case: "cnn" }>["value"];

/** Dense layers with ReLU between them; a softmax output for classes, a linear one for regression. */
export function mlpModel(spec: MlpSpec, data: DataShape): tfl.Sequential {
  const model = tfl.sequential({ name: "mlp" });
  const inputShape = [...data.featureShape];
  if (inputShape.length > 1) model.add(tfl.layers.flatten({ inputShape, name: "flatten" }));
  spec.hiddenUnits.forEach((units, i) => {
    model.add(tfl.layers.dense({ units, activation: "relu", name: `dense${i}`, ...(model.layers.length === 0 ? { inputShape } : {}) }));
  });
  model.add(outputLayer(data, model.layers.length === 0 ? inputShape : undefined));
  return model;
}

/** Per filter count: conv k x k 'same' + ReLU + 2x2 max-pool; then an optional dense ReLU layer and the output. */
export function cnnModel(spec: CnnSpec, data: DataShape): tfl.Sequential {
  const shape = data.featureShape;
  if (shape.length !== 2 && shape.length !== 3) {
    throw invalidField(
      "spec.model.cnn",
      `a CNN takes images (height, width[, channels]); the dataset's features have shape [${shape.join(", ")}]: choose the mlp`,
    );
  }
  const model = tfl.sequential({ name: "cnn" });
  // Greyscale images without a channel axis get one.
  if (shape.length === 2) model.add(tfl.layers.reshape({ inputShape: [...shape], targetShape: [...shape, 1], name: "channels" }));
  spec.convFilters.forEach((filters, i) => {
    model.add(
      tfl.layers.conv2d({
        filters,
        kernelSize: spec.kernelSize,
        padding: "same",
        activation: "relu",
        name: `conv${i}`,
        ...(model.layers.length === 0 ? { inputShape: [...shape] } : {}),
      }),
    );
    model.add(tfl.layers.maxPooling2d({ poolSize: 2, strides: 2, padding: "valid", name: `pool${i}` }));
  });
  model.add(tfl.layers.flatten({ name: "flatten", ...(model.layers.length === 0 ? { inputShape: [...shape] } : {}) }));
  if (spec.denseUnits > 0) model.add(tfl.layers.dense({ units: spec.denseUnits, activation: "relu", name: "dense0" }));
  model.add(outputLayer(data, undefined));
  return model;
}

function outputLayer(data: DataShape, inputShape: number[] | undefined): tfl.layers.Layer {
  const units = data.classes > 0 ? data.classes : data.labelSize;
  const activation = data.classes > 0 ? "softmax" : "linear";
  return tfl.layers.dense({ units, activation, name: "output", ...(inputShape === undefined ? {} : { inputShape }) });
}
