/**
 * `npm run device:check`: one gradient step of the default MLP and the default CNN at the
 * default batch size (forward, backward and the gradient read back into a Float32Array, by the
 * worker's own model code), timed on every backend this host has: wasm always, native
 * TensorFlow where @tensorflow/tfjs-node(-gpu) is installed, webgpu where Dawn finds a GPU
 * adapter. Prints median and spread per backend and the speed-up over wasm, and the adapter
 * when webgpu runs; where no GPU exists it says why in a "no GPU adapter: ..." line and still
 * times wasm, exiting 0. Finishes in well under 5 minutes on a GPU machine.
 *
 * tf.js's webgpu backend cannot read a GPU tensor synchronously under Node, which the
 * worker's step does (dataSync); where that step fails on webgpu the check says so and times
 * the same model's gradient through tf.js's gradients with asynchronous reads (data()), the
 * nearest the GPU can come today, labelled as such.
 *
 * Flags: --quick (1 warm-up, 3 timed steps), --warmup N, --steps N, --dawn OPTION (repeatable;
 * passed to Dawn: --dawn backend=null exercises the webgpu path where no GPU exists, with
 * meaningless timings), --pack DIR (write a self-contained copy for a machine without
 * node_modules: see bench/README.md).
 */
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import * as tf from "@tensorflow/tfjs-core";
import { ModelSpecSchema, TrainfleetError } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import { dataShape, defaultJobSpec, modelDefaults, uniform01 } from "@trainfleet/spec";
import { buildModel, type Model, selectBackend } from "@trainfleet/worker";
import { median } from "./child.js";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    warmup: { type: "string" },
    steps: { type: "string" },
    dawn: { type: "string", multiple: true, default: [] },
    pack: { type: "string" },
  },
});
if (values.pack !== undefined) {
  const { packDeviceCheck } = await import("./device-check-pack.js");
  await packDeviceCheck(values.pack);
  process.exit(0);
}
const warmup = Number(values.warmup ?? (values.quick ? 1 : 5));
const steps = Number(values.steps ?? (values.quick ? 3 : 30));
for (const [flag, n] of [
  ["--warmup", warmup],
  ["--steps", steps],
] as const) {
  if (!Number.isInteger(n) || n < (flag === "--steps" ? 1 : 0))
    throw new Error(`${flag} must be a whole number (steps at least 1), got ${n}`);
}
const dawn = values.dawn;
const batchSize = defaultJobSpec.training.batchSizePerWorker;
const data = dataShape({ ...defaultJobSpec.dataset, manifest: "" });
const models = [
  ["mlp", modelDefaults.mlp],
  ["cnn", modelDefaults.cnn],
] as const;

type Batch = Parameters<Model["lossAndGradient"]>[1];
interface Row {
  model: string;
  backend: string;
  step: string;
  timesMs: number[];
}

/** Seeded pixels in [0, 1) and every class in turn: a real batch's shape, no dataset files needed. */
function sampleBatch(): Batch {
  const size = data.featureShape.reduce((a, b) => a * b, 1);
  return {
    count: batchSize,
    x: Float32Array.from({ length: batchSize * size }, (_, i) => uniform01(3, i)),
    labels: Int32Array.from({ length: batchSize }, (_, i) => i % data.classes),
  };
}

async function time(step: () => unknown): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const start = performance.now();
    await step();
    times.push(performance.now() - start);
  }
  return times;
}

/** The worker's step: Model.lossAndGradient, gradient read with dataSync() into the Float32Array the push sends. */
function workerStep(model: Model, params: Float32Array, batch: Batch): () => number {
  const gradient = new Float32Array(model.parameterCount);
  return () => model.lossAndGradient(params, batch, gradient);
}

/**
 * The same model's loss gradient through tf.js's own gradients (not the worker's fused
 * blocks), each gradient read with data(): what a GPU backend that only reads asynchronously
 * can do today. Softmax output and cross-entropy, as the presets train.
 */
function asyncReadStep(model: Model, batch: Batch): () => Promise<void> {
  const variables = model.layersModel.trainableWeights.map((weight) => weight.read() as tf.Variable);
  const gradient = new Float32Array(model.parameterCount);
  return async () => {
    const grads = tf.tidy(() => {
      const x = tf.tensor(batch.x, [batch.count, ...model.inputShape], "float32");
      const labels = tf.oneHot(tf.tensor1d(batch.labels, "int32"), data.classes);
      const { value, grads } = tf.variableGrads(() => {
        const output = model.layersModel.apply(x, { training: true }) as tf.Tensor2D;
        return tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.log(tf.clipByValue(output, 1e-7, 1))), -1))) as tf.Scalar;
      }, variables);
      return [value, ...variables.map((v) => grads[v.name]!)];
    });
    const read = await Promise.all(grads.map((g) => g.data() as Promise<Float32Array>));
    let offset = 0;
    for (const values of read.slice(1)) {
      gradient.set(values, offset);
      offset += values.length;
    }
    tf.dispose(grads);
  };
}

async function built(name: string, spec: (typeof models)[number][1]): Promise<{ model: Model; params: Float32Array }> {
  const model = await buildModel(create(ModelSpecSchema, spec), data);
  const params = model.parameters();
  if (params.length !== model.parameterCount)
    throw new Error(`${name}: parameters() gave ${params.length} values for ${model.parameterCount}`);
  return { model, params };
}

function why(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  // selectBackend's 'backend "x" is unavailable: ' prefix says nothing this output does not.
  return error instanceof TrainfleetError ? text.replace(/^backend "\w+" is unavailable: /, "") : text;
}

const rows: Row[] = [];
const batch = sampleBatch();
console.log(
  `device check: one gradient step of the default MLP and CNN, batch ${batchSize}, ${warmup} warm-up + ${steps} timed steps per row (node ${process.version}, ${process.platform}-${process.arch})`,
);

// wasm: the reference every other row is compared with.
const wasm = await selectBackend("wasm", silentLogger);
console.log(`wasm: ${wasm.detail}`);
for (const [name, spec] of models) {
  const { model, params } = await built(name, spec);
  rows.push({ model: name, backend: "wasm", step: "worker", timesMs: await time(workerStep(model, params, batch)) });
  model.dispose();
}

// Native TensorFlow, where installed: the worker's step as it is.
try {
  const native = await selectBackend("tensorflow", silentLogger);
  console.log(`tensorflow: ${native.detail}`);
  for (const [name, spec] of models) {
    const { model, params } = await built(name, spec);
    rows.push({ model: name, backend: "tensorflow", step: "worker", timesMs: await time(workerStep(model, params, batch)) });
    model.dispose();
  }
} catch (error) {
  console.log(`tensorflow: not available: ${why(error)}`);
}

// webgpu, where Dawn finds an adapter. The model is built (and checked) on wasm, then moved.
const webgpuOptions = { requireSyncRead: false, dawn };
let gpu: string | undefined;
try {
  gpu = (await selectBackend("webgpu", silentLogger, webgpuOptions)).detail;
} catch (error) {
  console.log(`no GPU adapter: ${why(error).replace(/^no adapter \((.*?)\)(?=:)/, "$1")}`);
}
if (gpu !== undefined) {
  console.log(
    `webgpu: ${gpu}${dawn.length > 0 ? ` (Dawn options: ${dawn.join(" ")}; timings from a non-default Dawn backend may mean nothing)` : ""}`,
  );
  for (const [name, spec] of models) {
    await selectBackend("wasm", silentLogger);
    const { model, params } = await built(name, spec);
    await selectBackend("webgpu", silentLogger, webgpuOptions);
    const step = workerStep(model, params, batch);
    let failure: string | undefined;
    try {
      step();
    } catch (error) {
      failure = why(error);
    }
    if (failure === undefined) {
      rows.push({ model: name, backend: "webgpu", step: "worker", timesMs: await time(step) });
    } else {
      console.log(`webgpu ${name}: the worker's step fails (${failure}); timing tf.js's gradients with asynchronous reads instead`);
      rows.push({ model: name, backend: "webgpu", step: "tf.js gradients, async read", timesMs: await time(asyncReadStep(model, batch)) });
    }
    model.dispose();
  }
}

const wasmMedian = new Map(rows.filter((row) => row.backend === "wasm").map((row) => [row.model, median(row.timesMs)]));
const table = [
  ["model", "backend", "step", "median ms", "min-max ms", "speed-up vs wasm"],
  ...rows.map((row) => {
    const mid = median(row.timesMs);
    return [
      row.model,
      row.backend,
      row.step,
      mid.toFixed(2),
      `${Math.min(...row.timesMs).toFixed(2)}-${Math.max(...row.timesMs).toFixed(2)}`,
      `${(wasmMedian.get(row.model)! / mid).toFixed(2)}x`,
    ];
  }),
];
const widths = table[0]!.map((_, c) => Math.max(...table.map((line) => line[c]!.length)));
for (const line of table)
  console.log(
    line
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join("  ")
      .trimEnd(),
  );
// A Dawn instance left referenced can keep Node's event loop alive: the check is over.
process.exit(0);
