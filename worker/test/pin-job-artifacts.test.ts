/**
 * A job's own files are read once and pinned into its spec; a spec pinned before (a
 * checkpoint's) must still match its files: resuming against a changed model or changed
 * data fails, naming what changed.
 */
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import * as tfl from "@tensorflow/tfjs-layers";
import { Code, JobSpecSchema, Loss, TrainfleetError } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { dataShape, parameterLayout, resolveJobSpec } from "@trainfleet/spec";
import { convertDigits } from "@trainfleet/testing/fixtures/digits-dataset";
import { type ModelFileServer, startModelFileServer } from "@trainfleet/testing/fixtures/tfjs-saved-model";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectBackend } from "../src/compute/backend.js";
import { pinJobArtifacts } from "../src/pin-job-artifacts.js";

let files: ModelFileServer;
let spec: ResolvedJobSpec;
let modelJson: string;
let manifest: string;

function digitsModel(units: number): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [64], units, activation: "relu" }),
      tfl.layers.dropout({ rate: 0.1 }),
      tfl.layers.dense({ units: 10, activation: "softmax" }),
    ],
  });
}

beforeAll(async () => {
  await selectBackend("cpu", silentLogger);
  const dir = await mkdtemp(join(tmpdir(), "trainfleet-pin-"));
  files = await startModelFileServer(dir);
  modelJson = await files.save(digitsModel(16), "model");
  const digits = await convertDigits({ recordsPerFile: 1000, recordsPerBlock: 250, evalFraction: 0.2 });
  manifest = join(digits.dir, "dataset.json");
  spec = resolveJobSpec(
    create(JobSpecSchema, {
      model: { kind: { case: "layers", value: { uri: modelJson, loss: Loss.SPARSE_CATEGORICAL_CROSSENTROPY } } },
      dataset: { manifest, evalManifest: join(digits.dir, "eval-dataset.json") },
    }),
  );
});
afterAll(async () => files?.close());

describe("pinJobArtifacts", () => {
  it("pins the dataset's counts and shape and the model's trainable tensors, so every role derives the same layout", async () => {
    const pinned = await pinJobArtifacts(spec);
    expect(pinned.dataset!.facts).toMatchObject({ featureShape: [8, 8, 1], classes: 10, labelSize: 0 });
    expect(pinned.dataset!.facts!.trainRecords + pinned.dataset!.facts!.evalRecords).toBe(1797);
    expect(pinned.dataset!.facts!.digest).toMatch(/^[0-9a-f]{64}$/);
    const artifact = pinned.model!.kind.case === "layers" ? pinned.model!.kind.value.artifact! : undefined;
    expect(artifact?.tensors.map((t) => [t.shape, t.initializer])).toEqual([
      [[64, 16], "glorot-uniform"],
      [[16], "zeros"],
      [[16, 10], "glorot-uniform"],
      [[10], "zeros"],
    ]);
    expect(artifact).toMatchObject({ hasWeights: true, inputShape: [64], outputShape: [10] });
    expect(artifact!.notExact.join()).toMatch(/Dropout/);
    expect(parameterLayout(pinned.model!, dataShape(pinned.dataset!)).parameterCount).toBe(64 * 16 + 16 + 16 * 10 + 10);
    // Pinning a pinned spec reads the files again and changes nothing.
    expect(await pinJobArtifacts(pinned)).toEqual(pinned);
  });

  it("refuses a pinned spec whose model changed since, naming it", async () => {
    const pinned = await pinJobArtifacts(spec);
    // The same layers saved again over it: other initial weights, so other bytes.
    expect(await files.save(digitsModel(16), "model")).toBe(modelJson);
    const error = await pinJobArtifacts(pinned).catch((e: unknown) => TrainfleetError.from(e));
    expect(error).toBeInstanceOf(TrainfleetError);
    expect(error).toMatchObject({ code: Code.FAILED_PRECONDITION });
    expect((error as TrainfleetError).message).toMatch(/^spec.model.layers: the model .*model.json changed since the job was pinned to it/);
  });

  it("refuses a pinned spec whose dataset manifest changed since, naming it", async () => {
    // The built-in MLP on the sharded digits: only the dataset is read.
    const pinned = await pinJobArtifacts(resolveJobSpec(create(JobSpecSchema, { dataset: spec.dataset })));
    const text = await readFile(manifest, "utf8");
    await writeFile(manifest, `${text.trimEnd()}\n\n`);
    const error = await pinJobArtifacts(pinned).catch((e: unknown) => TrainfleetError.from(e));
    await writeFile(manifest, text);
    expect(error).toMatchObject({ code: Code.FAILED_PRECONDITION });
    expect((error as TrainfleetError).message).toMatch(
      /^spec.dataset: the dataset manifest .*dataset.json changed since the job was pinned to it/,
    );
  });
});
