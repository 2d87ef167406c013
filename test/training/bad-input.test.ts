/**
 * Bad input to `trainfleet run`, end to end with real files and real processes: each is a
 * clear error naming the file or field, the CLI exits non-zero, and nothing is left behind
 * as if the job had completed (no parameters.f32, no model.json). Where it fails is part
 * of what is checked:
 * - while `run` pins the job (reads the manifest and the model before any process starts):
 *   a manifest whose record count lies, a GraphModel, a model whose output does not fit the
 *   labels, an unreachable URL, and (pinning checks each shard file's size and footer) a
 *   missing shard file, per-file record counts that lie, a schema that disagrees with the
 *   file. No job folder is made.
 * - when a worker reads a block (only then are its bytes read): a corrupt block. The job
 *   ends FAILED with DataUnavailable; its folder has logs and spec.json only.
 * The data is scikit-learn's UCI digits converted by trainfleet; the models are written by
 * tf.js's own model.save, except the GraphModel (tensorflowjs_converter's format, which
 * tf.js cannot write), written here as the converter lays it out.
 */
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tfl from "@tensorflow/tfjs-layers";
import type { DatasetManifest } from "@trainfleet/artifacts";
import { silentLogger } from "@trainfleet/runtime";
import type { DigitsDataset } from "@trainfleet/testing/fixtures/digits-dataset";
import { convertDigits } from "@trainfleet/testing/fixtures/digits-dataset";
import { type ModelFileServer, startModelFileServer } from "@trainfleet/testing/fixtures/tfjs-saved-model";
import { runFleet, trainfleet } from "@trainfleet/testing/fleet/run-fleet";
import { selectBackend } from "@trainfleet/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** What a completed job writes into its folder; none of it may be there after a failure. */
const completeOutputs = ["parameters.f32", "parameters.json", "model.json", "weights.bin"];
/** A small job: the data and model are what is wrong, not its size. */
const smallJob = ["--backend", "cpu", "--workers", "1", "--shards", "1", "--batch-size", "16", "--epochs", "1", "--eval-samples", "100"];

let scratch: string;
let digits: DigitsDataset;
let models: ModelFileServer;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "trainfleet-bad-input-"));
  // 4 files of 3 blocks: 450, 450, 450 and 447 records.
  digits = await convertDigits({ recordsPerFile: 450, recordsPerBlock: 150 });
  await selectBackend("cpu", silentLogger);
  models = await startModelFileServer(join(scratch, "models"));
});
afterAll(async () => {
  await models?.close();
  await rm(scratch, { recursive: true, force: true });
  await rm(digits.dir, { recursive: true, force: true });
});

async function saveMlp(name: string, outputs: number): Promise<string> {
  const model = tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: [8, 8, 1] }),
      tfl.layers.dense({ units: 16, activation: "relu" }),
      tfl.layers.dense({ units: outputs, activation: "softmax" }),
    ],
  });
  const path = await models.save(model, name);
  model.dispose();
  return path;
}

/** A copy of the digits dataset in a folder of its own, its manifest (and files) changed by `edit`; returns the manifest's path. */
async function brokenDataset(name: string, edit: (manifest: DatasetManifest, dir: string) => Promise<void> | void): Promise<string> {
  const dir = join(scratch, name);
  await cp(digits.dir, dir, { recursive: true });
  const path = join(dir, "dataset.json");
  const manifest = JSON.parse(await readFile(path, "utf8")) as DatasetManifest;
  await edit(manifest, dir);
  await writeFile(path, JSON.stringify(manifest, null, 2));
  return path;
}

/** `trainfleet run` that is refused while it pins the job: exit 1, the message on stderr, no job folder, no process started. */
async function refusedAtPinning(flags: string[]): Promise<{ message: string; output: string; pinMs: number }> {
  const jobsDir = await mkdtemp(join(scratch, "jobs-"));
  const run = await trainfleet(["run", "--jobs-dir", jobsDir, ...flags]);
  expect(run.code, run.output).toBe(1);
  expect(await readdir(jobsDir), "a job folder of a job that never started").toEqual([]);
  expect(run.stdout, "no coordinator was started").not.toMatch(/coordinator:|logs and results:/);
  const message = /^trainfleet: (.*)$/m.exec(run.stderr)?.[1];
  expect(message, run.output).toBeDefined();
  // From the line `run` logs before it reads the files, to its exit.
  const pinStart = /"time":(\d+)[^\n]*"msg":"compute backend selected"/.exec(run.output)?.[1];
  return { message: message!, output: run.output, pinMs: Date.now() - Number(pinStart) };
}

/** `trainfleet run` of a job that a worker fails: exit 1, FAILED, and only logs and the spec in its folder. */
async function failedByWorker(flags: string[]): Promise<{ output: string }> {
  const run = await runFleet([...smallJob, "--hidden", "16", ...flags], 60_000);
  expect(run.code, run.output).toBe(1);
  expect(run.output).not.toContain("SUCCEEDED");
  expect(run.output).toMatch(/^FAILED \(WorkerFailed\): workers keep failing: 1 fatal worker failure \(\w+ x1\)/m);
  const files = await readdir(run.folder);
  expect(files).toContain("spec.json");
  for (const output of completeOutputs) expect(files, `${output} in the failed job's folder`).not.toContain(output);
  return { output: run.output };
}

/** The job's failure is reported as a data problem (reason DataUnavailable), not as a generic WorkerError. */
function expectDataUnavailable(output: string): void {
  expect(output).toMatch(/\(DataUnavailable x1\).*: DataUnavailable: /);
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe.concurrent("bad input that `trainfleet run` refuses while pinning the job, before any process starts", () => {
  it("pinning: a manifest whose total record count is not what its files hold names the manifest and the field `records`", async () => {
    const manifest = await brokenDataset("records-total", (m) => void (m.records += 10));
    const { message } = await refusedAtPinning([...smallJob, "--dataset", manifest]);
    expect(message).toBe(`${manifest}: records: says 1807, but the files hold 1797; the manifest is inconsistent: convert the data again`);
  });

  it("pinning: a tf.js GraphModel as --model-json is refused as inference-only, naming the file", async () => {
    const dir = join(scratch, "graph-model");
    await mkdir(dir);
    // tensorflowjs_converter's layout of a frozen graph: x (64) -> MatMul -> Softmax.
    const graphModel = {
      format: "graph-model",
      generatedBy: "2.15.0",
      convertedBy: "TensorFlow.js Converter v4.22.0",
      signature: {
        inputs: { x: { name: "x:0", dtype: "DT_FLOAT", tensorShape: { dim: [{ size: "-1" }, { size: "64" }] } } },
        outputs: { y: { name: "Identity:0", dtype: "DT_FLOAT", tensorShape: { dim: [{ size: "-1" }, { size: "10" }] } } },
      },
      modelTopology: {
        node: [
          {
            name: "x",
            op: "Placeholder",
            attr: { dtype: { type: "DT_FLOAT" }, shape: { shape: { dim: [{ size: "-1" }, { size: "64" }] } } },
          },
          { name: "dense/kernel", op: "Const", attr: { dtype: { type: "DT_FLOAT" }, value: { tensor: { dtype: "DT_FLOAT" } } } },
          { name: "dense/MatMul", op: "MatMul", input: ["x", "dense/kernel"], attr: { T: { type: "DT_FLOAT" } } },
          { name: "Identity", op: "Softmax", input: ["dense/MatMul"], attr: { T: { type: "DT_FLOAT" } } },
        ],
        library: {},
        versions: { producer: 1645 },
      },
      weightsManifest: [{ paths: ["group1-shard1of1.bin"], weights: [{ name: "dense/kernel", shape: [64, 10], dtype: "float32" }] }],
    };
    const path = join(dir, "model.json");
    await writeFile(path, JSON.stringify(graphModel));
    await writeFile(join(dir, "group1-shard1of1.bin"), new Uint8Array(64 * 10 * 4));
    const { message } = await refusedAtPinning([...smallJob, "--model-json", path, "--dataset", digits.train.path]);
    expect(message).toMatch(new RegExp(`^${literal(path)} is a tf\\.js GraphModel; GraphModels are inference-only: save a Layers model`));
  });

  it("pinning: a model whose output (Dense(3)) does not fit the 10 digit classes names the file and the units to give", async () => {
    const threeClasses = await saveMlp("three-classes", 3);
    const { message } = await refusedAtPinning([
      ...smallJob,
      ...["--model-json", threeClasses, "--loss", "sparse-categorical-crossentropy", "--dataset", digits.train.path],
    ]);
    expect(message).toMatch(
      new RegExp(
        `^${literal(threeClasses)}: its output gives 3 values per sample, but the dataset has 10 classes: give the output layer 10 units`,
      ),
    );
  });

  it.each([
    ["--model-json", "model.json"],
    ["--dataset", "dataset.json"],
  ])("pinning: an unreachable %s URL (a closed port) fails within seconds after the retries, naming the URL", async (flag, file) => {
    const url = `http://127.0.0.1:${await closedPort()}/${file}`;
    const given = flag === "--dataset" ? ["--dataset", url] : ["--model-json", url, "--dataset", digits.train.path];
    const { message, pinMs } = await refusedAtPinning([...smallJob, ...given]);
    expect(message).toMatch(new RegExp(`^${literal(url)}: unreachable after 4 attempts: connect ECONNREFUSED .*\\(UNAVAILABLE\\)$`));
    // The default retries (4 tries, backoff from 100 ms) end well within this; a request timing out (30 s each) would not.
    expect(pinMs).toBeLessThan(10_000);
  });
  it("pinning: a missing shard file, named with its place in the manifest", async () => {
    const manifest = await brokenDataset("missing-file", (_, dir) => rm(join(dir, "train-00002.parquet")));
    const { message } = await refusedAtPinning([...smallJob, "--dataset", manifest]);
    const file = join(scratch, "missing-file", "train-00002.parquet");
    expect(message).toContain(`shard file ${file} (files[2] of ${manifest}) cannot be read: ${file}: no such file`);
  });

  it("pinning: record counts that lie consistently (a block, its file and the total say 10 fewer) against the file's row group", async () => {
    const manifest = await brokenDataset("records-file", (m) => {
      const file = m.files[1]!;
      file.blocks[0]!.records -= 10;
      file.records -= 10;
      m.records -= 10;
    });
    const { message } = await refusedAtPinning([...smallJob, "--dataset", manifest]);
    const file = join(scratch, "records-file", "train-00001.parquet");
    expect(message).toContain(`${file} (files[1] of ${manifest}): row group 0 holds 150 records, but the manifest says 140`);
  });

  it("pinning: a manifest schema that disagrees with the file (column c5 said float32, stored as integers)", async () => {
    const manifest = await brokenDataset("schema", (m) => {
      const column = m.schema.find((c) => c.name === "c5")!;
      expect(column.type).toBe("uint8");
      column.type = "float32";
    });
    const { message } = await refusedAtPinning([...smallJob, "--dataset", manifest]);
    expect(message).toMatch(
      new RegExp(
        `${literal(join(scratch, "schema"))}/train-0000\\d\\.parquet \\(files\\[\\d\\] of ${literal(manifest)}\\): the file column "c5" is INT32, but the manifest says float32`,
      ),
    );
  });
});

describe.concurrent("a bad block that a worker finds when it reads it: the job FAILED with DataUnavailable", () => {
  it("worker: a corrupt block (one byte flipped inside it), named by file and block, found by its sha256", async () => {
    let expected = "";
    const manifest = await brokenDataset("corrupt-block", async (m, dir) => {
      const block = m.files[1]!.blocks[1]!;
      const path = join(dir, m.files[1]!.path);
      const bytes = await readFile(path);
      bytes[block.offset + Math.floor(block.length / 2)]! ^= 0xff;
      await writeFile(path, bytes);
      expected = `${literal(`block 1 (bytes ${block.offset}..${block.offset + block.length}) has sha256 `)}[0-9a-f]{64}, but the manifest says ${block.sha256}`;
    });
    const { output } = await failedByWorker(["--dataset", manifest]);
    const file = join(scratch, "corrupt-block", "train-00001.parquet");
    expect(output).toMatch(new RegExp(`${literal(`${file} (files[1] of ${manifest}): `)}${expected}\\. The file or its manifest changed`));
    expectDataUnavailable(output);
  });
});

function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
