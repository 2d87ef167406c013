/**
 * `trainfleet submit --dry-run --read-files` reads a TrainingJob's own model and dataset
 * where they are URLs, as its coordinator will when it starts, so a bad file is found
 * before the job is created: real files served over real HTTP (a model saved by tf.js, the
 * UCI digits converted to shards), and the real CLI.
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tfl from "@tensorflow/tfjs-layers";
import { silentLogger } from "@trainfleet/runtime";
import { convertDigits } from "@trainfleet/testing/fixtures/digits-dataset";
import type { ModelFileServer } from "@trainfleet/testing/fixtures/tfjs-saved-model";
import { startModelFileServer } from "@trainfleet/testing/fixtures/tfjs-saved-model";
import { trainfleet } from "@trainfleet/testing/fleet/run-fleet";
import { selectBackend } from "@trainfleet/worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let models: ModelFileServer;
let data: ModelFileServer;
let scratch: string;

beforeAll(async () => {
  await selectBackend("cpu", silentLogger);
  scratch = await mkdtemp(join(tmpdir(), "trainfleet-submit-files-"));
  models = await startModelFileServer(scratch);
  const model = tfl.sequential({
    layers: [tfl.layers.dense({ inputShape: [64], units: 16, activation: "relu" }), tfl.layers.dense({ units: 10, activation: "softmax" })],
  });
  await models.save(model, "digits");
  const digits = await convertDigits({ recordsPerFile: 1000, recordsPerBlock: 250 });
  data = await startModelFileServer(digits.dir);
});
afterAll(async () => Promise.all([models?.close(), data?.close()]));

async function submit(name: string, spec: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = join(scratch, `${name}.yaml`);
  await writeFile(
    file,
    `apiVersion: trainfleet.dev/v1alpha1\nkind: TrainingJob\nmetadata:\n  name: ${name}\nspec:\n  image: trainfleet:0.1.0\n${spec}`,
  );
  return trainfleet(["submit", file, "--dry-run", "--read-files"]);
}

describe("submit --dry-run --read-files", () => {
  it("reads a job's model and dataset URLs and says what they hold", async () => {
    const { code, stdout, stderr } = await submit(
      "digits-http",
      `  model:\n    layers:\n      uri: ${models.url}/digits/model.json\n      loss: sparse-categorical-crossentropy\n  dataset:\n    manifest: ${data.url}/dataset.json\n`,
    );
    expect(code, stderr).toBe(0);
    expect(stdout).toBe(
      `trainingjob.trainfleet.dev/digits-http created (dry run); read its files: 1,210 parameters, 1,797 training records\n`,
    );
  });

  it("refuses a job whose model URL does not answer, naming the job and the URL, and creates nothing", async () => {
    const { code, stdout, stderr } = await submit(
      "digits-missing",
      `  model:\n    layers:\n      uri: ${models.url}/nothing-here/model.json\n      loss: sparse-categorical-crossentropy\n  dataset:\n    manifest: ${data.url}/dataset.json\n`,
    );
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toContain(
      `digits-missing.yaml: trainingjob.trainfleet.dev/digits-missing: ${models.url}/nothing-here/model.json: no such file`,
    );
  });

  it("leaves paths alone: they are inside the job's pods", async () => {
    const { code, stdout, stderr } = await submit(
      "digits-pvc",
      "  model:\n    layers:\n      uri: /data/digits/model.json\n  dataset:\n    manifest: /data/digits/dataset.json\n",
    );
    expect(code, stderr).toBe(0);
    expect(stdout).toBe(
      "trainingjob.trainfleet.dev/digits-pvc created (dry run); its model and data are paths inside its pods: its coordinator reads them when it starts\n",
    );
  });
});
