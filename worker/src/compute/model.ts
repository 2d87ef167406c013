/**
 * The model a worker trains, as a pure function of ONE flat parameter vector (layout
 * order), so the worker can pull, differentiate and push plain Float32Arrays. Every model
 * (the built-in mlp and cnn presets, and a user's Layers model.json) is a tf.js
 * LayersModel compiled to one plan (model-plan.ts); the flat parameters are its trainable
 * weights in `trainableWeights` order. Each call writes them into the model's variables
 * and differentiates the loss with respect to those, inside tf.tidy, so nothing leaks.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import type { LayersArtifact, SourceOptions } from "@trainfleet/artifacts";
import { redactUri } from "@trainfleet/artifacts";
import type { ModelSpec } from "@trainfleet/proto";
import { invalidField } from "@trainfleet/proto";
import type { DataShape } from "@trainfleet/spec";
import { featureSize } from "@trainfleet/spec";
import type { HostBatch } from "./host-batch.js";
import { crossEntropy, meanCrossEntropy, meanSigmoidCrossEntropy, sigmoidCrossEntropy } from "./layers.js";
import { loadUserLayersModel } from "./layers-model-loader.js";
import type { ModelLoss } from "./losses.js";
import { perExampleLoss, resolveLoss } from "./losses.js";
import { checkInterface, checkOutput, notExactReasons } from "./model-check.js";
import type { ModelPlan } from "./model-plan.js";
import { compilePlan } from "./model-plan.js";
import type { ModelTensorSlot } from "./model-weights.js";
import { flatten, leafLayers, slots } from "./model-weights.js";
import { cnnModel, mlpModel } from "./preset-model.js";
import { tf as tfNamespace } from "./tf-namespace.js";
import { checkTraining } from "./training-check.js";

export type { ModelTensorSlot } from "./model-weights.js";

export interface Model {
  /**
   * The flat parameter vector's tensors: the trainable weights in trainableWeights order,
   * then the buffers (non-trainable weights, BatchNormalization's moving statistics) in
   * nonTrainableWeights order. The parameter layout.
   */
  readonly tensors: ModelTensorSlot[];
  /** Elements of the flat vector: trainable ones and buffers. */
  readonly parameterCount: number;
  /** Elements [0, trainableCount) are trained; the rest are buffers, which follow rank 0. */
  readonly trainableCount: number;
  /** One sample's input and output shapes. */
  readonly inputShape: number[];
  readonly outputShape: number[];
  readonly loss: ModelLoss;
  /** "fused": every layer runs a hand-written block; "tfjs-gradients": some run through tf.js's registered gradients. */
  readonly plan: "fused" | "tfjs-gradients";
  /** The layers that run through tf.js's registered gradients. */
  readonly tfjsGradientLayers: string[];
  /** Why training this model is not bit-exact; empty when it is. */
  readonly notExact: string[];
  /** The user's artifact (layers models only). */
  readonly artifact: LayersArtifact | undefined;
  /** The tf.js model itself (for writing it out); its variables hold the last parameters used. */
  readonly layersModel: tfl.LayersModel;
  /**
   * Mean loss over the batch (plus any regularization), with `params` (trainable and
   * buffers) set. gradientOut[0, trainableCount) gets the loss's gradient;
   * gradientOut[trainableCount, parameterCount) the buffers as this forward pass in
   * training mode left them: what a rank pushes for them, and rank 0's become the next
   * version's.
   */
  lossAndGradient(params: Float32Array, batch: HostBatch, gradientOut: Float32Array): number;
  /** Correct predictions and the (float64) sum of per-example losses, for exact aggregation. */
  evaluate(params: Float32Array, batch: HostBatch): { correct: number; lossSum: number };
  /** The model's weights now, flat (trainable, then buffers): the artifact's when it has weights, until parameters are set. */
  parameters(): Float32Array;
  setParameters(params: Float32Array): void;
  dispose(): void;
}

export interface BuildModelOptions {
  sources?: SourceOptions | undefined;
  signal?: AbortSignal | undefined;
  /** false: every layer through tf.js's registered gradients, none through hand-written blocks (for checking them). */
  fuse?: boolean | undefined;
}

/** Call after selectBackend: the model runs, and is checked, on whichever tf.js backend is active. */
export async function buildModel(spec: ModelSpec, data: DataShape, options: BuildModelOptions = {}): Promise<Model> {
  const source = await modelSource(spec, data, options);
  try {
    const model = compileModel(source, data, options.fuse ?? true);
    checkTraining(model, data, source.describe);
    return model;
  } catch (error) {
    source.model.dispose();
    throw error;
  }
}

interface ModelSource {
  model: tfl.LayersModel;
  loss: ModelLoss;
  artifact: LayersArtifact | undefined;
  describe: string;
}

async function modelSource(spec: ModelSpec, data: DataShape, options: BuildModelOptions): Promise<ModelSource> {
  const kind = spec.kind;
  const presetLoss: ModelLoss =
    data.classes > 0
      ? { name: "sparseCategoricalCrossentropy", fromLogits: false, source: "the preset" }
      : { name: "meanSquaredError", fromLogits: false, source: "the preset" };
  switch (kind.case) {
    case "mlp":
      return { model: mlpModel(kind.value, data), loss: presetLoss, artifact: undefined, describe: "spec.model.mlp" };
    case "cnn":
      return { model: cnnModel(kind.value, data), loss: presetLoss, artifact: undefined, describe: "spec.model.cnn" };
    case "layers": {
      const { model, artifact, module } = await loadUserLayersModel(kind.value, options);
      try {
        const describe = redactUri(kind.value.uri);
        const loss = resolveLoss(kind.value.loss, module?.loss, artifact.trainingConfig, describe);
        return { model, loss, artifact, describe };
      } catch (error) {
        model.dispose();
        throw error;
      }
    }
    default:
      throw invalidField("spec.model", "choose a model: mlp, cnn or layers");
  }
}

function compileModel(source: ModelSource, data: DataShape, fuse: boolean): Model {
  const { model: layersModel, loss, describe } = source;
  const { inputShape, outputShape } = checkInterface(layersModel, data, describe);
  const outputs = outputShape[0] as number;
  checkOutput(outputs, loss, data, describe);
  const plan: ModelPlan = compilePlan(layersModel, loss, { fuse, describe });
  const trainable = layersModel.trainableWeights;
  const weights = [...trainable, ...layersModel.nonTrainableWeights];
  const variables = trainable.map((weight) => weight.read() as tf.Variable);
  const allVariables = weights.map((weight) => weight.read() as tf.Variable);
  const tensors = slots(weights, trainable.length, layersModel);
  const parameterCount = tensors.reduce((sum, t) => sum + t.size, 0);
  const trainableCount = tensors.filter((t) => t.trainable).reduce((sum, t) => sum + t.size, 0);
  // Regularizers add their penalties to the loss, as model.fit does; most models have none.
  const regularized = leafLayers(layersModel.layers).filter((layer) => layer.losses.length > 0);

  const setParameters = (params: Float32Array) => {
    allVariables.forEach((variable, i) => {
      const slot = tensors[i]!;
      variable.assign(tf.tensor(params.subarray(slot.offset, slot.offset + slot.size), slot.shape, "float32"));
    });
  };
  const forward = (x: tf.Tensor, training: boolean): tf.Tensor2D => {
    let h = x;
    let inputGradient = false;
    for (const step of plan.steps) {
      h = step.run(
        h,
        step.weights.map((i) => variables[i]!),
        training,
        inputGradient,
      );
      inputGradient ||= step.trainable;
    }
    return h as tf.Tensor2D;
  };
  const input = (batch: HostBatch) => tf.tensor(batch.x, [batch.count, ...inputShape], "float32");
  const classIndices = (batch: HostBatch) => tf.tensor1d(batch.labels, "int32");
  const oneHot = (batch: HostBatch) => tf.oneHot(classIndices(batch), data.classes) as tf.Tensor2D;
  /** What the loss compares the output with: one-hot classes, 0/1 labels of a one-output binary model, or regression targets. */
  const targets = (batch: HostBatch): tf.Tensor2D => {
    if (data.classes === 0) return tf.tensor2d(batch.targets!, [batch.count, data.labelSize]);
    if (outputs === 1) return tf.tensor2d(Float32Array.from(batch.labels), [batch.count, 1]);
    return tf.cast(oneHot(batch), "float32");
  };
  const moduleLabels = (batch: HostBatch) => (data.classes > 0 ? classIndices(batch) : targets(batch));

  const batchLoss = (output: tf.Tensor2D, batch: HostBatch): tf.Scalar => {
    switch (plan.head) {
      case "softmax-cross-entropy":
        return meanCrossEntropy(output, oneHot(batch));
      case "sigmoid-cross-entropy":
        return meanSigmoidCrossEntropy(output, targets(batch));
      case "output":
        if (loss.module !== undefined) return loss.module(tfNamespace, moduleLabels(batch), output);
        return tf.mean(perExampleLoss(loss, targets(batch), output));
    }
  };
  const exampleLosses = (output: tf.Tensor2D, batch: HostBatch): tf.Tensor1D => {
    switch (plan.head) {
      case "softmax-cross-entropy":
        return crossEntropy(tf.logSoftmax(output), oneHot(batch));
      case "sigmoid-cross-entropy":
        return tf.mean(sigmoidCrossEntropy(output, targets(batch)), -1);
      case "output":
        // A module's loss is a batch mean: each example is counted at the mean.
        if (loss.module !== undefined) return tf.fill([batch.count], loss.module(tfNamespace, moduleLabels(batch), output).dataSync()[0]!);
        return perExampleLoss(loss, targets(batch), output);
    }
  };
  /** Predicted class per example: the arg-max, or for one output whether it passes 0.5 (0 for logits). */
  const predictions = (output: tf.Tensor2D): tf.Tensor1D => {
    if (outputs > 1) return tf.argMax(output, 1);
    return tf.cast(tf.greaterEqual(tf.squeeze<tf.Tensor1D>(output, [1]), plan.head === "output" ? 0.5 : 0), "int32") as tf.Tensor1D;
  };

  const check = (params: Float32Array, batch: HostBatch) => {
    if (params.length !== parameterCount) throw invalidField("parameters", `has ${params.length} elements, the model ${parameterCount}`);
    if (batch.count < 1) throw invalidField("batch", "is empty");
    const size = featureSize(data);
    if (batch.x.length !== batch.count * size) {
      throw invalidField("batch", `x has ${batch.x.length} values for ${batch.count} samples of ${size} features`);
    }
    if (data.classes > 0) {
      if (batch.labels.length !== batch.count) throw invalidField("batch", `has ${batch.labels.length} labels for ${batch.count} samples`);
      for (const label of batch.labels) {
        if (label < 0 || label >= data.classes) throw invalidField("batch.labels", `label ${label} is outside [0, ${data.classes})`);
      }
    } else if (batch.targets?.length !== batch.count * data.labelSize) {
      throw invalidField("batch", `has ${batch.targets?.length ?? 0} target values for ${batch.count} samples of ${data.labelSize}`);
    }
  };

  return {
    tensors,
    parameterCount,
    trainableCount,
    inputShape,
    outputShape,
    loss,
    plan: plan.fused ? "fused" : "tfjs-gradients",
    tfjsGradientLayers: plan.steps.filter((step) => !step.fused).flatMap((step) => step.layers),
    notExact: notExactReasons(layersModel),
    artifact: source.artifact,
    layersModel,
    lossAndGradient(params, batch, gradientOut) {
      check(params, batch);
      if (gradientOut.length !== parameterCount) {
        throw invalidField("gradient", `has ${gradientOut.length} elements, the model ${parameterCount}`);
      }
      return tf.tidy(() => {
        setParameters(params);
        const x = input(batch);
        const f = () => {
          let value = batchLoss(forward(x, true), batch);
          for (const layer of regularized) for (const penalty of layer.calculateLosses()) value = tf.add(value, penalty);
          return value;
        };
        const { value, grads } = tf.variableGrads(f, variables);
        variables.forEach((variable, i) => {
          const { offset, size } = tensors[i]!;
          const gradient = grads[variable.name];
          if (gradient === undefined) gradientOut.fill(0, offset, offset + size);
          else gradientOut.set(gradient.dataSync(), offset);
        });
        // The forward pass in training mode moved the buffers: pushed as they are now.
        for (let i = variables.length; i < allVariables.length; i++) gradientOut.set(allVariables[i]!.dataSync(), tensors[i]!.offset);
        return value.dataSync()[0] as number;
      });
    },
    evaluate(params, batch) {
      check(params, batch);
      const [predicted, losses] = tf.tidy(() => {
        setParameters(params);
        const output = forward(input(batch), false);
        return [data.classes > 0 ? predictions(output).dataSync() : undefined, exampleLosses(output, batch).dataSync()];
      });
      let correct = 0;
      let lossSum = 0;
      for (let i = 0; i < batch.count; i++) {
        if (predicted !== undefined && predicted[i] === batch.labels[i]) correct++;
        lossSum += losses[i] as number;
      }
      return { correct, lossSum };
    },
    parameters: () => flatten(weights, parameterCount),
    setParameters: (params) => {
      if (params.length !== parameterCount) throw invalidField("parameters", `has ${params.length} elements, the model ${parameterCount}`);
      tf.tidy(() => setParameters(params));
    },
    dispose: () => layersModel.dispose(),
  };
}
