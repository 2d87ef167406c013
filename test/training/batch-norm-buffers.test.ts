/**
 * A user's model with BatchNormalization trained by real processes: its moving statistics
 * (non-trainable weights, "buffers") follow rank 0, as PyTorch DDP's broadcast_buffers
 * makes them. Each step every rank normalises with the buffers of the version it pulled
 * and pushes the values its forward pass left; the next version takes rank 0's. So:
 * - the fleet's parameters, buffers included, equal bit for bit the single-process
 *   reference that takes rank 0's buffers each step (perRankReference);
 * - the buffers are not each worker's own drift: every worker evaluates with the same
 *   ones, and the model.json the job writes holds them, so stock tf.js predicts the
 *   held-out records exactly as the job's evaluation counted them.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsonValue } from "@bufbuild/protobuf";
import { fromJson } from "@bufbuild/protobuf";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { JobSpecSchema } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import { dataShape, parameterLayout } from "@trainfleet/spec";
import { digitsCsvPath } from "@trainfleet/testing/fixtures/digits-dataset";
import { type ModelFileServer, startModelFileServer } from "@trainfleet/testing/fixtures/tfjs-saved-model";
import { firstDifference } from "@trainfleet/testing/fleet/compare-parameters";
import { perRankReference } from "@trainfleet/testing/fleet/reference-training";
import { runFleet } from "@trainfleet/testing/fleet/run-fleet";
import { openTrainingData, selectBackend } from "@trainfleet/worker";
import { convertDataset } from "@trainfleet/worker/dataset";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let dir: string;
let server: ModelFileServer;
let digits: { train: string; evaluation: string };
let modelJson: string;

beforeAll(async () => {
  expect((await selectBackend("cpu", silentLogger)).name).toBe("cpu");
  dir = await mkdtemp(join(tmpdir(), "batch-norm-"));
  server = await startModelFileServer(dir);
  const converted = await convertDataset({
    ...{ input: await digitsCsvPath(), recordsPerFile: 600, recordsPerBlock: 100, scale: 1 / 16 },
    ...{ fileFormat: "parquet", evalFraction: 0.2, seed: 3, out: join(dir, "digits") },
  });
  digits = { train: converted.train.path, evaluation: converted.evaluation!.path };
  const seeded = (seed: number) => ({ kernelInitializer: tfl.initializers.glorotUniform({ seed }) });
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [64], units: 32, ...seeded(1) }),
      tfl.layers.batchNormalization({ name: "norm", momentum: 0.9 }),
      tfl.layers.activation({ activation: "relu" }),
      tfl.layers.dense({ units: 10, activation: "softmax", ...seeded(2) }),
    ],
  });
  modelJson = await server.save(model, "bn");
  model.dispose();
});

afterAll(async () => {
  await server?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("a user's model with BatchNormalization, 3 worker processes", () => {
  it("trains with the moving statistics following rank 0: bitwise the reference, and written so stock tf.js predicts as the job evaluated", async () => {
    const fleet = await runFleet([
      ...["--job-id", "batch-norm", "--model-json", modelJson, "--loss", "sparse-categorical-crossentropy"],
      ...["--dataset", digits.train, "--eval-dataset", digits.evaluation, "--eval-samples", "0"],
      ...["--workers", "3", "--shards", "2", "--chunk-bytes", "4096", "--batch-size", "16", "--epochs", "2"],
      ...["--optimizer", "adam", "--lr", "0.01", "--seed", "5", "--backend", "cpu"],
    ]);
    expect(fleet.code, fleet.output).toBe(0);
    // Not bit-exact (each rank normalises with its own slice's statistics), and the coordinator says so.
    expect(await readFile(join(fleet.folder, "coordinator.log"), "utf8")).toContain("does not train bit-exactly");
    const spec = fromJson(JobSpecSchema, JSON.parse(await readFile(join(fleet.folder, "spec.json"), "utf8")) as JsonValue);
    const layout = parameterLayout(spec.model!, dataShape(spec.dataset!));
    // Moving mean and variance, 32 each, after the 64*32 + 32 + 32 + 32 + 32*10 + 10 trainable elements.
    expect(layout.tensors.filter((t) => !t.trainable).map((t) => t.name)).toEqual(["norm/moving_mean", "norm/moving_variance"]);
    expect(layout.parameterCount - layout.trainableCount).toBe(64);
    expect(fleet.parameters.length).toBe(layout.parameterCount);
    const buffers = fleet.parameters.subarray(layout.trainableCount);
    // Training moved them from where they start (mean 0, variance 1).
    expect(buffers.subarray(0, 32).some((v) => v !== 0)).toBe(true);
    expect(buffers.subarray(32).some((v) => v !== 1)).toBe(true);

    const data = await openTrainingData(spec.dataset!, { dataDirs: [] });
    try {
      const reference = await perRankReference(spec, data, 3, fleet.description.version);
      expect(firstDifference(fleet.parameters, reference)).toBe(-1);

      // The job's model.json, loaded by stock tf.js, holds those buffers and predicts the held-out digits as the job counted.
      const written = await startModelFileServer(fleet.folder);
      const model = await tfl.loadLayersModel(`${written.url}/model.json`);
      await written.close();
      const writtenBuffers = Float32Array.from(model.nonTrainableWeights.flatMap((w) => Array.from(w.read().dataSync())));
      expect(firstDifference(writtenBuffers, buffers)).toBe(-1);
      const accuracy = Number(/SUCCEEDED: test accuracy (\d+\.\d+)%/.exec(fleet.output)?.[1]);
      const evalRecords = spec.dataset!.facts!.evalRecords;
      const held = await data.eval.batch(Array.from({ length: evalRecords }, (_, i) => i));
      const correct = tf.tidy(() => {
        const predicted = tf.argMax(model.predict(tf.tensor2d(held.x, [held.count, 64])) as tf.Tensor, -1);
        return tf.sum(tf.equal(predicted, tf.tensor1d(held.labels, "int32"))).dataSync()[0]!;
      });
      model.dispose();
      expect(((100 * correct) / evalRecords).toFixed(2)).toBe(accuracy.toFixed(2));
      expect(accuracy).toBeGreaterThan(80);
    } finally {
      await data.close();
    }
  });
});
