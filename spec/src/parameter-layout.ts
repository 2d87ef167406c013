/**
 * The flattened parameter vector of a model: which tensor lives at which offset. Workers,
 * parameter-server shards and the coordinator all derive it from the JobSpec, so a key
 * (an element offset) means the same thing in every process.
 */
import type { ModelSpec } from "@trainfleet/proto";
import { invalidField } from "@trainfleet/proto";

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
  /** Glorot-uniform fan-in and fan-out; 0 for biases, which start at zero. */
  fanIn: number;
  fanOut: number;
}

export interface ParameterLayout {
  kind: "mlp" | "cnn";
  input: InputShape;
  tensors: TensorSlot[];
  parameterCount: number;
  /** CNN only: the spatial pooling applied after each conv, for the forward pass. */
  convKernelSize: number;
}

const datasetShapes: Record<string, InputShape> = {
  "fashion-mnist": { height: 28, width: 28, channels: 1, classes: 10, trainSamples: 60_000, testSamples: 10_000 },
};

export function datasetShape(name: string): InputShape {
  const shape = datasetShapes[name];
  if (shape === undefined) {
    throw invalidField("spec.dataset.name", `unknown dataset "${name}"; known: ${Object.keys(datasetShapes).join(", ")}`);
  }
  return shape;
}

export function parameterLayout(model: ModelSpec, input: InputShape): ParameterLayout {
  const tensors: TensorSlot[] = [];
  let offset = 0;
  const add = (name: string, shape: number[], fanIn: number, fanOut: number) => {
    const size = shape.reduce((a, b) => a * b, 1);
    tensors.push({ name, shape, offset, size, fanIn, fanOut });
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
      dense("output", input.classes, width);
      return { kind: "mlp", input, tensors, parameterCount: offset, convKernelSize: 0 };
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
      dense("output", input.classes, features);
      return { kind: "cnn", input, tensors, parameterCount: offset, convKernelSize: kernelSize };
    }
    default:
      throw invalidField("spec.model", "choose a model: mlp or cnn");
  }
}

/**
 * The initial values of elements [begin, end): Glorot-uniform kernels, zero biases. Each
 * element depends only on (seed, its offset), so every shard computes its own slice with
 * no coordination and every process gets identical bits.
 */
export function initialParameters(layout: ParameterLayout, seed: number, begin: number, end: number): Float32Array {
  const out = new Float32Array(end - begin);
  for (const tensor of layout.tensors) {
    if (tensor.fanIn === 0) continue;
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
