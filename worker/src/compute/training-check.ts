/**
 * One forward and backward pass on two made-up samples, run when a model is built, so a
 * job fails before its first step, naming the layer or kernel, instead of in the middle
 * of training with a tf.js stack trace. Kernels the active backend lacks (wasm has no
 * Conv2DBackpropFilter, for one) are stood in for, during the check only, by kernels that
 * throw a typed error; the layer that needs one is then found by running each layer alone.
 */
import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { DataShape } from "@trainfleet/spec";
import { featureSize, uniform01 } from "@trainfleet/spec";
import type { HostBatch } from "./host-batch.js";

/** What the check drives: a built model's training and evaluation, and its state to put back. */
export interface CheckedModel {
  readonly parameterCount: number;
  readonly layersModel: tfl.LayersModel;
  lossAndGradient(params: Float32Array, batch: HostBatch, gradientOut: Float32Array): number;
  evaluate(params: Float32Array, batch: HostBatch): { correct: number; lossSum: number };
  parameters(): Float32Array;
  setParameters(params: Float32Array): void;
}

class MissingKernel extends Error {
  constructor(readonly kernel: string) {
    super(`kernel ${kernel} is missing`);
  }
}

export function checkTraining(model: CheckedModel, data: DataShape, describe: string): void {
  const batch = sampleBatch(data, 2);
  // Training mode moves BatchNormalization's statistics: the check must leave no trace.
  const params = model.parameters();
  const backend = tf.getBackend();
  const standIns = standInKernels(backend);
  try {
    model.lossAndGradient(params, batch, new Float32Array(model.parameterCount));
    model.evaluate(params, batch);
  } catch (error) {
    discardTape();
    if (error instanceof MissingKernel) throw missingKernel(describe, error.kernel, backend, locate(model.layersModel, error.kernel));
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `${describe}: one forward and backward pass on two samples failed on the ${backend} backend: ${error instanceof Error ? error.message : String(error)}`,
      { field: "spec.model", cause: error },
    );
  } finally {
    for (const kernel of standIns) tf.unregisterKernel(kernel, backend);
    model.setParameters(params);
  }
}

/** `count` samples of seeded features in [0, 1) with valid labels (class i % classes, or seeded targets). */
export function sampleBatch(data: DataShape, count: number): HostBatch {
  const x = Float32Array.from({ length: count * featureSize(data) }, (_, i) => uniform01(7, i));
  if (data.classes > 0) return { count, x, labels: Int32Array.from({ length: count }, (_, i) => i % data.classes) };
  const targets = Float32Array.from({ length: count * data.labelSize }, (_, i) => uniform01(8, i));
  return { count, x, labels: new Int32Array(0), targets };
}

/** Registers, for each kernel the cpu backend has and `backend` lacks, one that throws MissingKernel; returns their names. */
function standInKernels(backend: string): string[] {
  if (backend === "cpu") return [];
  const missing = tf
    .getKernelsForBackend("cpu")
    .map((kernel) => kernel.kernelName)
    .filter((name) => tf.getKernel(name, backend) === undefined);
  for (const kernelName of missing) {
    tf.registerKernel({
      kernelName,
      backendName: backend,
      kernelFunc: () => {
        throw new MissingKernel(kernelName);
      },
    });
  }
  return missing;
}

/** The first layer that, run alone forward and backward, needs `kernel`. */
function locate(model: tfl.LayersModel, kernel: string): tfl.layers.Layer | undefined {
  const dependsOnWeights = new Map<tfl.layers.Layer, boolean>();
  for (const layer of model.layers) {
    const node = layer.inboundNodes[0];
    const inputGradient = (node?.inboundLayers ?? []).some((inbound) => dependsOnWeights.get(inbound) === true);
    dependsOnWeights.set(layer, inputGradient || layer.trainableWeights.length > 0);
    if (node === undefined || layer.getClassName() === "InputLayer") continue;
    const shapes = node.inputTensors.map((t) => t.shape.map((d, i) => (i === 0 ? 2 : (d ?? 1))));
    if (needs(layer, shapes, inputGradient, kernel)) return layer;
  }
  return undefined;
}

function needs(layer: tfl.layers.Layer, shapes: number[][], inputGradient: boolean, kernel: string): boolean {
  const inputs: tf.Variable[] = [];
  try {
    tf.tidy(() => {
      const xs = shapes.map((shape, i) => tf.randomUniform(shape, 0, 1, "float32", i + 1));
      const args = inputGradient ? xs.map((x) => inputs[inputs.push(tf.variable(x)) - 1]!) : xs;
      const variables = [...layer.trainableWeights.map((weight) => weight.read() as tf.Variable), ...inputs];
      const output = () => tf.sum(layer.apply(args.length === 1 ? args[0]! : args, { training: true }) as tf.Tensor) as tf.Scalar;
      if (variables.length === 0) output();
      else tf.variableGrads(output, variables);
    });
    return false;
  } catch (error) {
    discardTape();
    return error instanceof MissingKernel && error.kernel === kernel;
  } finally {
    for (const input of inputs) input.dispose();
  }
}

/**
 * tf.js keeps the tensors a gradient tape saves for the backward pass and frees them when
 * that pass completes; a pass that threw leaves them kept for good. Freed here, so that a
 * long-lived process (the coordinator inspects the models of the jobs it is given) does
 * not leak with each refused model.
 */
function discardTape(): void {
  const { state } = tf.engine() as unknown as { state: { gradientDepth: number; activeTape: Array<{ saved?: tf.Tensor[] }> | null } };
  if (state.gradientDepth !== 0 || state.activeTape === null) return;
  for (const node of state.activeTape) for (const tensor of node.saved ?? []) tensor.dispose();
  state.activeTape = null;
}

function missingKernel(describe: string, kernel: string, backend: string, layer: tfl.layers.Layer | undefined): TrainfleetError {
  const where = layer === undefined ? "it" : `its layer ${layer.name} (${layer.getClassName()})`;
  const fix =
    kernel === "Conv2DBackpropFilter"
      ? "trainfleet computes that gradient itself for a Conv2D with strides 1, dilation 1, padding 'same' or 'valid' and " +
        "channelsLast whose weights are all trainable (a MaxPooling2D(2) after it fuses too): give the layer those, " +
        "or choose the cpu or tensorflow backend"
      : kernel.startsWith("DepthwiseConv2dNative")
        ? "use a Conv2D instead, or choose the cpu or tensorflow backend"
        : "choose the cpu or tensorflow backend";
  return new TrainfleetError(
    Code.FAILED_PRECONDITION,
    `${describe}: ${where} needs the kernel ${kernel} to train, which the ${backend} backend lacks: ${fix}`,
    { field: "spec.model" },
  );
}
