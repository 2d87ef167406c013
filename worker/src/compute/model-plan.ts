/**
 * The one compiler from a tf.js LayersModel to what a worker runs each step: a chain of
 * steps, each either a hand-written block of layers.ts (Dense, a stride-1 Conv2D with its
 * max-pool and ReLU, Flatten/Reshape) or a layer's own call differentiated through tf.js's
 * registered gradients (anything else: Dropout, BatchNormalization, custom layers), and a
 * head that fuses the last softmax or sigmoid into its cross-entropy. The built-in presets
 * compile to hand-written blocks only, the same kernels in the same order as before this
 * compiler existed, so their results are bit for bit what they were. A model that is not
 * one chain of layers (branches, merges) runs whole through tf.js's gradients.
 */
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { convBlock, dense } from "./layers.js";
import type { ModelLoss } from "./losses.js";
import { isCrossEntropy } from "./losses.js";

type Layer = tfl.layers.Layer;

/**
 * softmax-cross-entropy / sigmoid-cross-entropy: the steps end in logits and the loss is
 * fused with the activation (layers.ts). output: the steps give the model's output and the
 * loss is tf.js's formula (losses.ts) or the user module's.
 */
export type Head = "softmax-cross-entropy" | "sigmoid-cross-entropy" | "output";

export interface PlanStep {
  /** The layers this step runs. */
  layers: string[];
  /** A hand-written block (true), or layers run by their own call and tf.js's registered gradients. */
  fused: boolean;
  /** Indices into the model's trainable weights that the step takes as arguments (fused steps). */
  weights: number[];
  /** Whether the step holds trainable weights, so that the steps after it need their input's gradient. */
  trainable: boolean;
  run(h: tf.Tensor, weights: tf.Tensor[], training: boolean, inputGradient: boolean): tf.Tensor;
}

export interface ModelPlan {
  steps: PlanStep[];
  head: Head;
  /** Every step is a hand-written block. */
  fused: boolean;
}

export interface PlanOptions {
  /** false: run the whole model through tf.js's gradients (to check the blocks against it). */
  fuse: boolean;
  /** Names the model in messages. */
  describe: string;
}

export function compilePlan(model: tfl.LayersModel, loss: ModelLoss, options: PlanOptions): ModelPlan {
  const chain = options.fuse ? chainOf(model) : undefined;
  if (chain === undefined) {
    const whole: PlanStep = {
      layers: model.layers.filter((layer) => layer.getClassName() !== "InputLayer").map((layer) => layer.name),
      fused: false,
      weights: [],
      trainable: model.trainableWeights.length > 0,
      run: (h, _, training) => model.apply(h, { training }) as tf.Tensor,
    };
    const logits = loss.fromLogits && (isCrossEntropy(loss.name) || loss.name === "binaryCrossentropy");
    return { steps: [whole], head: logits ? logitsHead(loss) : "output", fused: false };
  }
  const index = new Map(model.trainableWeights.map((weight, i) => [weight, i]));
  const ops = fold(chain.flatMap((layer) => toOps(layer, index)));
  const head = chooseHead(ops, loss, options.describe);
  const steps = ops.map(toStep);
  return { steps, head, fused: steps.every((step) => step.fused) };
}

/** The model's layers when each feeds only the next, from its one input to its one output; else undefined. */
function chainOf(model: tfl.LayersModel): Layer[] | undefined {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return undefined;
  const layers = model.layers.filter((layer) => layer.getClassName() !== "InputLayer");
  let previous: Layer | undefined;
  for (const layer of layers) {
    const node = layer.inboundNodes.length === 1 ? layer.inboundNodes[0] : undefined;
    if (node === undefined || node.inboundLayers.length !== 1 || node.outputTensors.length !== 1) return undefined;
    const from = node.inboundLayers[0]!;
    if (previous === undefined ? from.getClassName() !== "InputLayer" : from !== previous) return undefined;
    previous = layer;
  }
  if (previous === undefined || model.outputs[0] !== previous.inboundNodes[0]!.outputTensors[0]) return undefined;
  return layers;
}

/** One layer's part in the chain before folding: `names` lists the layers an op stands for. */
type Op =
  | { kind: "reshape"; names: string[]; shape: number[] }
  | { kind: "dense"; names: string[]; weights: number[]; relu: boolean }
  | { kind: "conv"; names: string[]; weights: number[]; padding: "same" | "valid"; relu: boolean; pool: boolean }
  | { kind: "maxpool2"; names: string[]; layer: Layer }
  | { kind: "activation"; names: string[]; activation: string; layer: Layer | undefined }
  | { kind: "layer"; names: string[]; layer: Layer };

function toOps(layer: Layer, index: Map<tfl.LayerVariable, number>): Op[] {
  const config = layer.getConfig() as Record<string, unknown>;
  const names = [layer.name];
  const generic: Op[] = [{ kind: "layer", names, layer }];
  const inputShape = layer.inboundNodes[0]!.inputTensors[0]!.shape;
  const weights = layer.trainableWeights.map((weight) => index.get(weight));
  // The kernel, and the bias unless useBias is false, all trainable.
  const ownWeights = weights.length === (config.useBias === false ? 1 : 2) && weights.every((i) => i !== undefined);
  const fusable = ownWeights && layer.nonTrainableWeights.length === 0;
  const activation = String(config.activation ?? "linear");
  const split = (op: Op): Op[] =>
    activation === "linear" || activation === "relu" ? [op] : [op, { kind: "activation", names: [], activation, layer: undefined }];
  switch (layer.getClassName()) {
    case "Flatten":
      return config.dataFormat === "channelsFirst" && inputShape.length > 2 ? generic : [{ kind: "reshape", names, shape: [-1] }];
    case "Reshape":
      return [{ kind: "reshape", names, shape: (config.targetShape as number[]).slice() }];
    case "Dense":
      // tf.js's Dense on a rank > 2 input acts on the last axis; the block flattens.
      if (!fusable || inputShape.length !== 2) return generic;
      return split({ kind: "dense", names, weights: weights as number[], relu: activation === "relu" });
    case "Conv2D": {
      const padding = config.padding;
      const ones = (value: unknown) => Array.isArray(value) && value.every((v) => v === 1);
      const supported =
        fusable &&
        (padding === "same" || padding === "valid") &&
        ones(config.strides) &&
        ones(config.dilationRate) &&
        config.dataFormat === "channelsLast";
      if (!supported) return generic;
      return split({ kind: "conv", names, weights: weights as number[], padding, relu: activation === "relu", pool: false });
    }
    case "MaxPooling2D": {
      const twos = (value: unknown) => Array.isArray(value) && value.length === 2 && value.every((v) => v === 2);
      const fits = twos(config.poolSize) && twos(config.strides) && config.padding === "valid" && config.dataFormat === "channelsLast";
      return fits ? [{ kind: "maxpool2", names, layer }] : generic;
    }
    case "Activation":
      return [{ kind: "activation", names, activation, layer }];
    default:
      return generic;
  }
}

/** Merges ReLUs and 2x2 max-pools into the Dense or Conv2D block before them; drops linear activations. */
function fold(ops: Op[]): Op[] {
  const out: Op[] = [];
  for (const op of ops) {
    const last = out.at(-1);
    const absorb = (into: Op) => {
      into.names.push(...op.names);
    };
    if (op.kind === "activation" && op.activation === "linear" && last !== undefined) {
      absorb(last);
      continue;
    }
    if (op.kind === "activation" && op.activation === "relu" && (last?.kind === "dense" || last?.kind === "conv") && !last.relu) {
      last.relu = true;
      absorb(last);
      continue;
    }
    // ReLU commutes with max-pool, so a conv block takes the pool whether its ReLU came before or comes after.
    if (op.kind === "maxpool2" && last?.kind === "conv" && !last.pool) {
      last.pool = true;
      absorb(last);
      continue;
    }
    out.push(op);
  }
  return out;
}

/**
 * Fuses a last softmax (sigmoid) into a cross-entropy (binary cross-entropy) loss, or a
 * loss from logits into its activation. A linear output given a loss that expects
 * probabilities is refused: tf.js would clip it into nonsense.
 */
function chooseHead(ops: Op[], loss: ModelLoss, describe: string): Head {
  const last = ops.at(-1);
  const crossEntropy = isCrossEntropy(loss.name);
  const binary = loss.name === "binaryCrossentropy";
  if (!crossEntropy && !binary) return "output";
  if (loss.fromLogits) return logitsHead(loss);
  const expected = crossEntropy ? "softmax" : "sigmoid";
  if (last?.kind === "activation" && last.activation === expected) {
    ops.pop();
    const before = ops.at(-1);
    if (before !== undefined) before.names.push(...last.names);
    else ops.push({ kind: "reshape", names: last.names, shape: [-1] });
    return crossEntropy ? "softmax-cross-entropy" : "sigmoid-cross-entropy";
  }
  if ((last?.kind === "dense" || last?.kind === "conv") && !last.relu) {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `${describe}: its output layer ${last.names[0]} is linear (logits), but the loss ${loss.name} (from ${loss.source}) ` +
        `expects probabilities: give the layer activation '${expected}', or save the model compiled with a loss from logits ` +
        `(Keras: ${crossEntropy ? "SparseCategoricalCrossentropy" : "BinaryCrossentropy"}(from_logits=True))`,
      { field: "spec.model" },
    );
  }
  return "output";
}

function logitsHead(loss: ModelLoss): Head {
  return loss.name === "binaryCrossentropy" ? "sigmoid-cross-entropy" : "softmax-cross-entropy";
}

function toStep(op: Op): PlanStep {
  switch (op.kind) {
    case "reshape":
      return {
        layers: op.names,
        fused: true,
        weights: [],
        trainable: false,
        run: (h) => tf.reshape(h, [h.shape[0] as number, ...op.shape]),
      };
    case "dense":
      return {
        layers: op.names,
        fused: true,
        weights: op.weights,
        trainable: true,
        run: (h, [kernel, bias], _, inputGradient) =>
          dense(h, kernel as tf.Tensor2D, bias as tf.Tensor1D | undefined, op.relu, inputGradient),
      };
    case "conv":
      return {
        layers: op.names,
        fused: true,
        weights: op.weights,
        trainable: true,
        run: (h, [filter, bias], _, inputGradient) =>
          convBlock(h as tf.Tensor4D, filter as tf.Tensor4D, bias as tf.Tensor1D | undefined, {
            padding: op.padding,
            pool: op.pool,
            relu: op.relu,
            inputGradient,
          }),
      };
    case "activation": {
      const layer = op.layer ?? tfl.layers.activation({ activation: op.activation as never });
      return layerStep(op.names.length > 0 ? op.names : [`${op.activation} activation`], layer);
    }
    case "maxpool2":
    case "layer":
      return layerStep(op.names, op.layer);
  }
}

function layerStep(names: string[], layer: Layer): PlanStep {
  return {
    layers: names,
    fused: false,
    weights: [],
    trainable: layer.trainableWeights.length > 0,
    run: (h, _, training) => layer.apply(h, { training }) as tf.Tensor,
  };
}
