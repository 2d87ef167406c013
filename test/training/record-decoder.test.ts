/**
 * A user's record decoder end to end: the UCI digits converted to Parquet with
 * features.decoder "module" and the decoded shape [80], decoded by a user's module (the 64
 * pixels plus their 8 row sums and 8 column sums) and trained by `trainfleet run` as real
 * processes with a model.json whose input is [80], saved by tf.js itself.
 * - Exact: 2 workers end bit for bit on the single-process rank-order reference fed the same
 *   decoded data (the module read through openTrainingData, as a worker reads it).
 * - Useful: at least 90% accuracy on the held-out fifth.
 * - Refused before any worker starts: the same job without the module, naming the field.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsonValue } from "@bufbuild/protobuf";
import { fromJson } from "@bufbuild/protobuf";
import * as tfl from "@tensorflow/tfjs-layers";
import type { JobSpec } from "@trainfleet/proto";
import { JobSpecSchema } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import { DIGITS_RECORDS, digitsCsvPath } from "@trainfleet/testing/fixtures/digits-dataset";
import { type ModelFileServer, startModelFileServer } from "@trainfleet/testing/fixtures/tfjs-saved-model";
import { firstDifference } from "@trainfleet/testing/fleet/compare-parameters";
import { perRankReference } from "@trainfleet/testing/fleet/reference-training";
import { runFleet, trainfleet } from "@trainfleet/testing/fleet/run-fleet";
import { repoPath } from "@trainfleet/testing/manifests";
import { openTrainingData, selectBackend } from "@trainfleet/worker";
import { convertDataset } from "@trainfleet/worker/dataset";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** The user's module: 64 pixels in, 80 features out (testing/src/fixtures/digits-decoder.mjs). */
const decoderModule = repoPath("testing", "src", "fixtures", "digits-decoder.mjs");

let dir: string;
let server: ModelFileServer;
let digits: { train: string; evaluation: string };
/** A user's MLP on the 80 decoded features, compiled before saving so that its loss is in the file. */
let modelJson: string;

beforeAll(async () => {
  expect((await selectBackend("cpu", silentLogger)).name).toBe("cpu");
  dir = await mkdtemp(join(tmpdir(), "record-decoder-"));
  server = await startModelFileServer(dir);
  const converted = await convertDataset({
    input: await digitsCsvPath(),
    out: join(dir, "digits"),
    fileFormat: "parquet",
    recordsPerFile: 600,
    recordsPerBlock: 100,
    decoder: "module",
    shape: [80],
    evalFraction: 0.2,
    seed: 3,
  });
  digits = { train: converted.train.path, evaluation: converted.evaluation!.path };
  const seeded = (seed: number) => ({ kernelInitializer: tfl.initializers.glorotUniform({ seed }) });
  const mlp = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [80], units: 32, activation: "relu", ...seeded(1) }),
      tfl.layers.dense({ units: 10, activation: "softmax", ...seeded(2) }),
    ],
  });
  mlp.compile({ optimizer: "adam", loss: "sparseCategoricalCrossentropy" });
  modelJson = await server.save(mlp, "mlp-80", { includeOptimizer: true });
  mlp.dispose();
});

afterAll(async () => {
  await server?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const jobFlags = () => [
  ...["--model-json", modelJson, "--dataset", digits.train, "--eval-dataset", digits.evaluation, "--eval-samples", "0"],
  ...["--workers", "2", "--shards", "2", "--batch-size", "16", "--epochs", "3", "--seed", "5"],
  ...["--optimizer", "adam", "--lr", "0.01", "--backend", "cpu"],
];

describe("a sharded dataset whose records a user's module decodes", () => {
  it("trains with 2 workers bit for bit like the rank-order reference on the decoded data, to at least 90% on the held-out digits", async () => {
    const fleet = await runFleet(["--job-id", "decoded-digits", "--model-module", decoderModule, ...jobFlags()]);
    expect(fleet.code, fleet.output).toBe(0);
    const match = /SUCCEEDED: test accuracy (\d+\.\d+)% \(test loss [\d.]+\) after (\d+) steps/.exec(fleet.output);
    expect(match, fleet.output).not.toBeNull();
    expect(Number(match![1])).toBeGreaterThanOrEqual(90);
    const steps = Number(match![2]);
    expect(fleet.description.version).toBe(steps);

    const spec = fromJson(JobSpecSchema, JSON.parse(await readFile(join(fleet.folder, "spec.json"), "utf8")) as JsonValue) as JobSpec;
    const facts = spec.dataset!.facts!;
    expect([facts.decodedByModule, facts.featureShape, facts.trainRecords + facts.evalRecords]).toEqual([true, [80], DIGITS_RECORDS]);
    // 3 epochs of the training records at a global batch of 32, the last batch of each epoch partial.
    expect(steps).toBe(3 * Math.ceil(facts.trainRecords / 32));

    const data = await openTrainingData(spec.dataset!, { dataDirs: [], module: decoderModule });
    try {
      const first = await data.train.batch([0]);
      expect(first.x.length).toBe(80);
      const perRank = await perRankReference(spec, data, 2, steps);
      expect(fleet.parameters.length).toBe(perRank.length);
      expect(firstDifference(fleet.parameters, perRank)).toBe(-1);
    } finally {
      await data.close();
    }
  });

  it("is refused by `trainfleet run` without the module, naming spec.model.layers.module, before any worker starts", async () => {
    const run = await trainfleet(["run", "--jobs-dir", join(dir, "jobs"), "--job-id", "no-module", ...jobFlags()]);
    expect(run.code).not.toBe(0);
    expect(run.output).toContain(`spec.model.layers.module: the dataset ${digits.train} says features.decoder "module"`);
    // The job folder is made only once the spec is pinned, before any process of the fleet starts.
    expect(existsSync(join(dir, "jobs"))).toBe(false);
  });
});
