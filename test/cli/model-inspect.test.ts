/**
 * `trainfleet model inspect`, the real CLI on a model saved by tf.js itself and the UCI digits
 * as shards: the layout and the verdict on exactness it prints, and a refusal that names
 * the reason and exits 1, as a job's own check would.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tfl from "@tensorflow/tfjs-layers";
import { silentLogger } from "@trainfleet/runtime";
import type { DigitsDataset } from "@trainfleet/testing/fixtures/digits-dataset";
import { convertDigits } from "@trainfleet/testing/fixtures/digits-dataset";
import type { ModelFileServer } from "@trainfleet/testing/fixtures/tfjs-saved-model";
import { startModelFileServer } from "@trainfleet/testing/fixtures/tfjs-saved-model";
import { trainfleet } from "@trainfleet/testing/fleet/run-fleet";
import { selectBackend } from "@trainfleet/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let files: ModelFileServer;
let digits: DigitsDataset;
let scratch: string;

function digitsModel(dropout: boolean): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [64], units: 16, activation: "relu" }),
      ...(dropout ? [tfl.layers.dropout({ rate: 0.2 })] : []),
      tfl.layers.dense({ units: 10, activation: "softmax" }),
    ],
  });
}

beforeAll(async () => {
  await selectBackend("cpu", silentLogger);
  scratch = await mkdtemp(join(tmpdir(), "trainfleet-inspect-"));
  files = await startModelFileServer(scratch);
  digits = await convertDigits({ recordsPerFile: 1000, recordsPerBlock: 250 });
});
afterAll(async () => files?.close());

const inspect = (model: string, ...flags: string[]) =>
  trainfleet(["model", "inspect", model, "--dataset", join(digits.dir, "dataset.json"), "--backend", "cpu", ...flags]);

describe("trainfleet model inspect", () => {
  it("prints the layout, the loss, the plan and that the model trains exactly", async () => {
    const model = await files.save(digitsModel(false), "plain");
    const { code, stdout, stderr } = await inspect(model, "--loss", "sparse-categorical-crossentropy");
    expect(code, stderr).toBe(0);
    const lines = stdout.split("\n");
    expect(lines[0]).toBe(`model ${model}`);
    expect(stdout).toContain("input [64] -> output [10]; loss sparseCategoricalCrossentropy (from spec.model.layers.loss)");
    expect(stdout).toContain("trains through trainfleet's fused gradient blocks");
    expect(stdout).toMatch(/parameters: P = 1,210 in 4 tensors \(layout sha256 [0-9a-f]{64}\)/);
    expect(stdout).not.toContain("buffer");
    expect(
      lines
        .filter((line) => /^ {4}\S+\/(kernel|bias) /.test(line))
        .map((line) =>
          line
            .trim()
            .split(/\s{2,}/)
            .slice(1),
        ),
    ).toEqual([
      ["[64, 16]", "1,024"],
      ["[16]", "16"],
      ["[16, 10]", "160"],
      ["[10]", "10"],
    ]);
    expect(stdout).toContain("exact: yes");
    expect(stdout).toContain("initial parameters: its weights (fine-tuning)");
  });

  it("lists BatchNormalization's moving statistics as buffers after the trainable tensors", async () => {
    const model = await files.save(
      tfl.sequential({
        layers: [
          tfl.layers.dense({ inputShape: [64], units: 16 }),
          tfl.layers.batchNormalization({ name: "norm" }),
          tfl.layers.dense({ units: 10, activation: "softmax" }),
        ],
      }),
      "batch-norm",
    );
    const { code, stdout, stderr } = await inspect(model, "--loss", "sparse-categorical-crossentropy");
    expect(code, stderr).toBe(0);
    // 1,024 + 16 + 16 + 16 + 160 + 10 trainable, 32 buffers.
    expect(stdout).toMatch(/parameters: P = 1,274 in 8 tensors/);
    expect(stdout).toContain("of which 32 are buffers (non-trainable): not optimised; each step takes rank 0's values");
    const tensorLines = stdout.split("\n").filter((line) => /^ {4}\S+\/\S+ /.test(line));
    expect(tensorLines.slice(-2).map((line) => line.trim().split(/\s{2,}/))).toEqual([
      ["norm/moving_mean", "[16]", "16", "buffer"],
      ["norm/moving_variance", "[16]", "16", "buffer"],
    ]);
    expect(tensorLines.slice(0, -2).every((line) => !line.endsWith("buffer"))).toBe(true);
  });

  it("says why a model with Dropout is not exact, and which layer trains through tf.js's gradients", async () => {
    const model = await files.save(digitsModel(true), "dropout");
    const { code, stdout, stderr } = await inspect(model, "--loss", "sparse-categorical-crossentropy");
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/trains through tf\.js's registered gradients for dropout_Dropout\d+/);
    expect(stdout).toMatch(/exact: no\n {4}- layer dropout_Dropout\d+ \(Dropout\) draws random noise while training/);
  });

  it("refuses a GraphModel and a model without a loss, saying what to do, with exit code 1", async () => {
    const graph = join(scratch, "graph.json");
    await writeFile(graph, JSON.stringify({ format: "graph-model", modelTopology: { node: [] }, weightsManifest: [] }));
    const refused = await inspect(graph);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe("");
    expect(refused.stderr).toMatch(/GraphModels are inference-only/);
    const noLoss = await inspect(await files.save(digitsModel(false), "no-loss"));
    expect(noLoss.code).toBe(1);
    expect(noLoss.stderr).toMatch(/has no loss: give spec.model.layers.loss \(--loss\) or compile the model before saving it/);
  });
});
