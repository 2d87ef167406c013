/**
 * What a user brings, trained end to end: a model that tf.js's own `model.save` wrote (no
 * trainfleet code made its files) and a real second dataset (scikit-learn's UCI digits)
 * converted to Parquet/Arrow shards, trained by `trainfleet run` as real processes.
 * - Exact: 2 and 3 workers, SGD+momentum and Adam, end bit for bit on the single-process
 *   rank-order reference, and within float tolerance of stock tf.js (loadLayersModel +
 *   trainOnBatch on the global batch of N*b samples in the same order).
 * - Written back: the job's model.json loads with stock tf.loadLayersModel, holding parameters.f32.
 * - Useful: a user's small CNN reaches at least 90% accuracy on the held-out digits.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsonValue } from "@bufbuild/protobuf";
import { fromJson } from "@bufbuild/protobuf";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import type { JobSpec } from "@trainfleet/proto";
import { JobSpecSchema } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import { DIGITS_RECORDS, digitsCsvPath } from "@trainfleet/testing/fixtures/digits-dataset";
import { type ModelFileServer, startModelFileServer } from "@trainfleet/testing/fixtures/tfjs-saved-model";
import { firstDifference, notClose } from "@trainfleet/testing/fleet/compare-parameters";
import { perRankReference, stockTfjsReference } from "@trainfleet/testing/fleet/reference-training";
import { type FleetResult, runFleet } from "@trainfleet/testing/fleet/run-fleet";
import type { BackendChoice } from "@trainfleet/worker";
import { openTrainingData, selectBackend } from "@trainfleet/worker";
import { convertDataset } from "@trainfleet/worker/dataset";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const steps = 20;
const batch = 16;

let dir: string;
let server: ModelFileServer;
/** The digits as 64 features scaled to [0, 1]: Parquet and Arrow shards (train only). */
const flatDigits = { parquet: "", arrow: "" };
/** The digits as 8x8x1 images, Parquet, with a held-out 20% (dataset.json, eval-dataset.json). */
let imageDigits: { train: string; evaluation: string };
/** model.json of a user's MLP, compiled before saving so that its loss is in the file. */
let mlpJson: string;
/** model.json of a user's CNN, saved without its compile settings (the loss comes from --loss). */
let cnnJson: string;

beforeAll(async () => {
  expect((await selectBackend("cpu", silentLogger)).name).toBe("cpu");
  dir = await mkdtemp(join(tmpdir(), "own-model-"));
  server = await startModelFileServer(dir);
  // Pixels are 0..16; several files and blocks, so a step's samples come from many blocks.
  const common = { input: await digitsCsvPath(), recordsPerFile: 600, recordsPerBlock: 100, scale: 1 / 16 };
  for (const fileFormat of ["parquet", "arrow"] as const) {
    flatDigits[fileFormat] = (await convertDataset({ ...common, fileFormat, out: join(dir, `digits-${fileFormat}`) })).train.path;
  }
  const images = await convertDataset({
    ...common,
    fileFormat: "parquet",
    shape: [8, 8, 1],
    evalFraction: 0.2,
    seed: 3,
    out: join(dir, "images"),
  });
  imageDigits = { train: images.train.path, evaluation: images.evaluation!.path };

  const seeded = (seed: number) => ({ kernelInitializer: tfl.initializers.glorotUniform({ seed }) });
  const mlp = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [64], units: 32, activation: "relu", ...seeded(1) }),
      tfl.layers.dense({ units: 10, activation: "softmax", ...seeded(2) }),
    ],
  });
  mlp.compile({ optimizer: "sgd", loss: "sparseCategoricalCrossentropy" });
  // tf.js keeps the compiled loss (trainingConfig) only when it saves the optimizer too.
  mlpJson = await server.save(mlp, "mlp", { includeOptimizer: true });
  mlp.dispose();
  const cnn = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 8, kernelSize: 3, activation: "relu", ...seeded(3) }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 10, activation: "softmax", ...seeded(4) }),
    ],
  });
  cnnJson = await server.save(cnn, "cnn");
  cnn.dispose();
  expect(JSON.parse(await readFile(mlpJson, "utf8")).trainingConfig.loss).toBe("sparse_categorical_crossentropy");
  expect(JSON.parse(await readFile(cnnJson, "utf8")).trainingConfig).toBeUndefined();
});

afterAll(async () => {
  await server?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function jobSpec(fleet: FleetResult): Promise<JobSpec> {
  return fromJson(JobSpecSchema, JSON.parse(await readFile(join(fleet.folder, "spec.json"), "utf8")) as JsonValue);
}

/** The job's trained model as stock tf.js loads it (over HTTP, tf.js's own loader), and its trainable weights flat. */
async function loadWrittenModel(fleet: FleetResult): Promise<{ model: tfl.LayersModel; weights: Float32Array }> {
  const jobFolder = await startModelFileServer(fleet.folder);
  try {
    const model = await tfl.loadLayersModel(`${jobFolder.url}/model.json`);
    return { model, weights: Float32Array.from(model.trainableWeights.flatMap((w) => Array.from(w.read().dataSync()))) };
  } finally {
    await jobFolder.close();
  }
}

// Adam at tf.js's default rate: tf.js computes Adam's bias correction 1 - beta2^t in float32,
// where beta2 = 0.999 rounds to 0.99900001, so every stock step is ~6e-6 (relative) off the
// exact one; over 20 steps at 0.001 that stays far inside the tolerance (at 0.01 it reaches it).
const optimizers = [
  ["sgd+momentum", ["--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9"]],
  ["adam", ["--optimizer", "adam", "--lr", "0.001"]],
] as const;

/** Trains the user's MLP on `dataset` for `steps` and checks it against both references (computed here on `backend` too). */
async function expectExact(workers: number, optimizerFlags: readonly string[], dataset: string, backend: BackendChoice): Promise<void> {
  const fleet = await runFleet([
    ...["--job-id", "own-mlp", "--model-json", mlpJson, "--dataset", dataset, "--workers", String(workers), "--shards", "2"],
    ...["--batch-size", String(batch), "--max-steps", String(steps), "--eval-samples", "100", "--seed", "5"],
    ...["--backend", backend, "--chunk-bytes", "4096", ...optimizerFlags],
  ]);
  expect(fleet.code, fleet.output).toBe(0);
  expect(fleet.description.version).toBe(steps);
  const spec = await jobSpec(fleet);
  expect(spec.model!.kind.case).toBe("layers");
  const data = await openTrainingData(spec.dataset!, { dataDirs: [] });
  try {
    const perRank = await perRankReference(spec, data, workers, steps);
    expect(fleet.parameters.length).toBe(perRank.length);
    expect(firstDifference(fleet.parameters, perRank)).toBe(-1);

    const stock = await stockTfjsReference(spec, data, workers, steps);
    expect(stock.length).toBe(fleet.parameters.length);
    expect(notClose(fleet.parameters, stock, 1e-5, 1e-6)).toEqual([]);
    // Both started from the weights tf.js saved, and training moved them: the comparison is not between two copies of the start.
    const initial = await stockTfjsReference(spec, data, workers, 0);
    expect(firstDifference(await perRankReference(spec, data, workers, 0), initial)).toBe(-1);
    expect(notClose(fleet.parameters, initial, 1e-5, 1e-6).length).toBeGreaterThan(perRank.length / 2);
  } finally {
    await data.close();
  }

  // What the job wrote beside parameters.f32 is a model stock tf.js loads, with those weights.
  const written = await loadWrittenModel(fleet);
  expect(firstDifference(written.weights, fleet.parameters)).toBe(-1);
  written.model.dispose();
}

describe("a user's model.json saved by tf.js, on digits converted to Parquet", () => {
  describe.each([2, 3])("%i worker processes", (workers) => {
    it.each(optimizers)(
      `${steps} steps with %s: bitwise equal to the per-rank reference, allclose to stock tf.js trainOnBatch with batch N*b`,
      (_name, optimizerFlags) => expectExact(workers, optimizerFlags, flatDigits.parquet, "cpu"),
    );
  });

  it(`on the wasm backend, from Arrow shards, 2 workers, ${steps} steps with adam: the same two comparisons`, async () => {
    expect((await selectBackend("wasm", silentLogger)).name).toBe("wasm");
    try {
      await expectExact(2, optimizers[1][1], flatDigits.arrow, "wasm");
    } finally {
      await selectBackend("cpu", silentLogger);
    }
  });
});

describe("a user's CNN on the digits as 8x8 images with a held-out fifth", () => {
  it("trains with 2 workers to at least 90% accuracy on the held-out digits, and the model it writes predicts them as well in stock tf.js", async () => {
    const fleet = await runFleet([
      ...["--job-id", "own-cnn", "--model-json", cnnJson, "--loss", "sparse-categorical-crossentropy"],
      ...["--dataset", imageDigits.train, "--eval-dataset", imageDigits.evaluation, "--eval-samples", "0"],
      ...["--workers", "2", "--batch-size", "32", "--epochs", "4", "--optimizer", "adam", "--lr", "0.01", "--backend", "cpu"],
    ]);
    expect(fleet.code, fleet.output).toBe(0);
    const match = /SUCCEEDED: test accuracy (\d+\.\d+)% \(test loss [\d.]+\) after (\d+) steps/.exec(fleet.output);
    expect(match, fleet.output).not.toBeNull();
    const accuracy = Number(match![1]);
    expect(accuracy).toBeGreaterThanOrEqual(90);

    // Stock tf.js, on the model file the job wrote, classifies the held-out records as the job reported.
    const spec = await jobSpec(fleet);
    const evalRecords = spec.dataset!.facts!.evalRecords;
    expect(evalRecords).toBe(Math.round(DIGITS_RECORDS * 0.2));
    const written = await loadWrittenModel(fleet);
    expect(firstDifference(written.weights, fleet.parameters)).toBe(-1);
    const data = await openTrainingData(spec.dataset!, { dataDirs: [] });
    try {
      const held = await data.eval.batch(Array.from({ length: evalRecords }, (_, i) => i));
      const correct = tf.tidy(() => {
        const predicted = tf.argMax(written.model.predict(tf.tensor(held.x, [held.count, 8, 8, 1])) as tf.Tensor, -1);
        return tf.sum(tf.equal(predicted, tf.tensor1d(held.labels, "int32"))).dataSync()[0]!;
      });
      expect(((100 * correct) / evalRecords).toFixed(2)).toBe(accuracy.toFixed(2));
    } finally {
      await data.close();
      written.model.dispose();
    }
  });
});
