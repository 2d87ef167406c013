/**
 * The flattened parameter vector of a model: which tensor lives at which offset. Workers,
 * parameter-server shards and the coordinator all derive it from the JobSpec, so a key
 * (an element offset) means the same thing in every process.
 */
import type { ModelSpec } from "@trainfleet/proto";
import { Code, invalidField, TrainfleetError } from "@trainfleet/proto";
import type { DataShape } from "./data-shape.js";
import { featureSize } from "./data-shape.js";

/** One sample as the built-in models see it: an image (a flat feature vector is 1 x n x 1). */
export interface InputShape {
  height: number;
  width: number;
  channels: number;
  classes: number;
  trainSamples: number;
  testSamples: number;
}

export interface TensorSlot {
  name: string;
  /** tf.js shapes: dense kernels [in, out], conv filters [k, k, in, out], biases [out]. */
  shape: number[];
  offset: number;
  size: number;
  /** Glorot-uniform fan-in and fan-out. */
  fanIn: number;
  fanOut: number;
  /** How seeded initialisation starts it: Glorot-uniform kernels, zero biases (and ones where a user's layer says so). */
  initializer: "glorot-uniform" | "zeros" | "ones";
  /** false: a buffer (BatchNormalization's moving statistics), which follows rank 0 instead of the optimizer. */
  trainable: boolean;
}

export interface ParameterLayout {
  kind: "mlp" | "cnn" | "layers";
  data: DataShape;
  input: InputShape;
  /** The trainable tensors, then the buffers. */
  tensors: TensorSlot[];
  /** Elements of the flat vector that the data plane moves: trainable ones and buffers. */
  parameterCount: number;
  /**
   * Elements [0, trainableCount) are trained: gradients pushed, averaged, optimised.
   * Elements [trainableCount, parameterCount) are buffers: each rank pushes the values its
   * forward pass left, and the next version takes rank 0's, as PyTorch DDP's
   * broadcast_buffers does. The built-in models have none.
   */
  trainableCount: number;
  /** CNN only: the spatial pooling applied after each conv, for the forward pass. */
  convKernelSize: number;
}

/** The built-in models' view of the data: features as height x width x channels. */
function inputShape(data: DataShape): InputShape {
  const [height, width, channels] =
    data.featureShape.length === 3
      ? data.featureShape
      : data.featureShape.length === 2
        ? [...data.featureShape, 1]
        : [1, featureSize(data), 1];
  return {
    height: height as number,
    width: width as number,
    channels: channels as number,
    classes: data.classes,
    trainSamples: data.trainRecords,
    testSamples: data.evalRecords,
  };
}

/**
 * The flattened parameters of a model: a built-in model's tensors follow from its spec and
 * the data's shape; a user's Layers model's are its trainable weights as pinned in
 * spec.model.layers.artifact, in trainableWeights order.
 */
export function parameterLayout(model: ModelSpec, data: DataShape): ParameterLayout {
  const input = inputShape(data);
  const tensors: TensorSlot[] = [];
  let offset = 0;
  const add = (
    name: string,
    shape: number[],
    fanIn: number,
    fanOut: number,
    initializer: TensorSlot["initializer"] = "glorot-uniform",
    trainable = true,
  ) => {
    const size = shape.reduce((a, b) => a * b, 1);
    tensors.push({
      name,
      shape,
      offset,
      size,
      fanIn,
      fanOut,
      initializer: fanIn === 0 && initializer === "glorot-uniform" ? "zeros" : initializer,
      trainable,
    });
    offset += size;
  };
  const dense = (name: string, units: number, inputs: number) => {
    add(`${name}/kernel`, [inputs, units], inputs, units);
    add(`${name}/bias`, [units], 0, 0);
    return units;
  };
  switch (model.kind.case) {
    case "mlp": {
      let width = input.height * input.width * input.channels;
      model.kind.value.hiddenUnits.forEach((units, i) => (width = dense(`dense${i}`, units, width)));
      dense("output", outputs(data), width);
      return { kind: "mlp", data, input, tensors, parameterCount: offset, trainableCount: offset, convKernelSize: 0 };
    }
    case "cnn": {
      const { convFilters, kernelSize, denseUnits } = model.kind.value;
      let channels = input.channels;
      let height = input.height;
      let width = input.width;
      convFilters.forEach((filters, i) => {
        add(
          `conv${i}/kernel`,
          [kernelSize, kernelSize, channels, filters],
          kernelSize * kernelSize * channels,
          kernelSize * kernelSize * filters,
        );
        add(`conv${i}/bias`, [filters], 0, 0);
        channels = filters;
        height = Math.floor(height / 2);
        width = Math.floor(width / 2);
      });
      let features = height * width * channels;
      if (denseUnits > 0) features = dense("dense0", denseUnits, features);
      dense("output", outputs(data), features);
      return { kind: "cnn", data, input, tensors, parameterCount: offset, trainableCount: offset, convKernelSize: kernelSize };
    }
    case "layers": {
      const artifact = model.kind.value.artifact;
      if (artifact === undefined || artifact.digest === "") {
        throw new TrainfleetError(
          Code.FAILED_PRECONDITION,
          `spec.model.layers.artifact: the model ${model.kind.value.uri} has not been read yet; trainfleet run, submit and coordinator read it when they resolve the job`,
        );
      }
      for (const tensor of artifact.tensors)
        add(tensor.name, [...tensor.shape], ...glorotFans(tensor.shape), seededInitializer(tensor.initializer));
      const trainableCount = offset;
      // A buffer starts as its layer says (moving mean zeros, moving variance ones), never Glorot.
      for (const buffer of artifact.buffers) add(buffer.name, [...buffer.shape], 0, 0, seededInitializer(buffer.initializer), false);
      return { kind: "layers", data, input, tensors, parameterCount: offset, trainableCount, convKernelSize: 0 };
    }
    default:
      throw invalidField("spec.model", "choose a model: mlp, cnn, or layers (a model.json)");
  }
}

/** A built-in model's output units: one per class, or one per regression value. */
function outputs(data: DataShape): number {
  return data.classes > 0 ? data.classes : data.labelSize;
}

function seededInitializer(name: string): TensorSlot["initializer"] {
  return name === "zeros" || name === "ones" ? name : "glorot-uniform";
}

/**
 * Keras's fans for Glorot initialisation: a dense kernel [in, out]; a conv kernel
 * [...spatial, in, out] times its receptive field; rank 0 and 1 (biases) start at zero.
 */
function glorotFans(shape: readonly number[]): [number, number] {
  if (shape.length < 2) return [0, 0];
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return [(shape.at(-2) as number) * receptive, (shape.at(-1) as number) * receptive];
}

/**
 * The seeded initial values of elements [begin, end): Glorot-uniform kernels, zero biases
 * (ones where a user's layer starts a tensor at one). Each
 * element depends only on (seed, its offset), so every shard computes its own slice with
 * no coordination and every process gets identical bits.
 */
export function initialParameters(layout: ParameterLayout, seed: number, begin: number, end: number): Float32Array {
  const out = new Float32Array(end - begin);
  for (const tensor of layout.tensors) {
    if (tensor.initializer === "ones")
      out.fill(1, Math.max(0, tensor.offset - begin), Math.max(0, Math.min(end, tensor.offset + tensor.size) - begin));
    if (tensor.initializer !== "glorot-uniform") continue;
    const limit = Math.sqrt(6 / (tensor.fanIn + tensor.fanOut));
    const from = Math.max(begin, tensor.offset);
    const to = Math.min(end, tensor.offset + tensor.size);
    for (let i = from; i < to; i++) out[i - begin] = (uniform01(seed, i) * 2 - 1) * limit;
  }
  return out;
}

/** A counter-based hash to [0, 1) (splitmix32-style mixing of seed and index). */
export function uniform01(seed: number, index: number): number {
  let x = (Math.imul(index, 0x9e3779b9) ^ Math.imul(seed >>> 0, 0x85ebca6b) ^ (index / 0x100000000)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  x ^= x >>> 15;
  return (x >>> 0) / 0x100000000;
}
