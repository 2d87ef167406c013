/**
 * `trainfleet model inspect MODEL_JSON`: what a job would do with a model, before it runs: the
 * model loaded on the chosen backend against the job's dataset, one forward and backward
 * pass on two samples, then its parameter layout (tensors, shapes, P, digest), how it
 * trains, and anything that keeps training it from being bit-exact. A refusal says what to
 * change, as a job's own check does before its first step.
 */
import { create } from "@bufbuild/protobuf";
import { DatasetFactsSchema, JobSpecSchema } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import { dataShape, resolveJobSpec } from "@trainfleet/spec";
import type { BackendChoice, ModelInspection } from "@trainfleet/worker";
import type { Command } from "../command.js";
import { commonFlags } from "../common-flags.js";
import { UsageError } from "../flags.js";
import { jobFlags, withJobFlags } from "../job-flags.js";
import { backendFlag } from "./worker.js";

export const modelCommand: Command = {
  name: "model",
  usage: "trainfleet model inspect MODEL_JSON [--dataset NAME|DATASET_JSON] [--backend B] [--loss L] [--model-module M] [--json]",
  summary:
    "Checks a model before a job trains it. `model inspect` loads a tf.js Layers model.json (a path, or an http(s):// or s3:// URL) on the chosen backend, runs one forward and backward pass on two samples shaped as the job's dataset's (--dataset, default the built-in Fashion-MNIST), and prints its parameter layout (tensors, shapes, P, digest), its loss, whether it trains through trainfleet's fused blocks or tf.js's gradients, and what keeps it from training bit-exactly; it exits 1 with the reason when a job would refuse it.",
  positionals: ["action", "model-json"],
  flags: {
    action: { kind: "string", choices: ["inspect"], help: "What to do (required; may be given as the first argument): inspect." },
    "model-json": jobFlags["model-json"]!,
    "model-sha256": jobFlags["model-sha256"]!,
    loss: jobFlags.loss!,
    "model-module": jobFlags["model-module"]!,
    dataset: jobFlags.dataset!,
    "eval-dataset": jobFlags["eval-dataset"]!,
    json: { kind: "boolean", help: "Print the inspection as JSON." },
    ...backendFlag,
    ...commonFlags,
  },
  async run({ values }) {
    if (values.action !== "inspect") throw new UsageError("give an action: trainfleet model inspect MODEL_JSON");
    const uri = values["model-json"];
    if (typeof uri !== "string") throw new UsageError("give the model: trainfleet model inspect MODEL_JSON");
    const { action: _action, json: _json, backend: _backend, ...jobValues } = values;
    const spec = resolveJobSpec(withJobFlags(create(JobSpecSchema), jobValues));
    const { inspectModel, selectBackend } = await import("@trainfleet/worker");
    const { datasetFacts } = await import("@trainfleet/worker/dataset");
    // Silent: the backend is said in the last line of the output, which is the command's only output.
    const backend = await selectBackend(values.backend as BackendChoice, silentLogger);
    // A sharded dataset's manifests are read as a job's are: the model is checked against their shape.
    const dataset = spec.dataset!;
    if (dataset.manifest !== "") dataset.facts = create(DatasetFactsSchema, await datasetFacts(dataset));
    const inspection = await inspectModel(spec.model!, dataShape(dataset));
    process.stdout.write(values.json === true ? `${JSON.stringify(inspection, null, 2)}\n` : describe(uri, inspection, backend.detail));
    return 0;
  },
};

function describe(uri: string, inspection: ModelInspection, backend: string): string {
  const count = (n: number) => n.toLocaleString("en-US");
  const width = Math.max(...inspection.tensors.map((t) => t.name.length));
  const shapes = inspection.tensors.map((t) => `[${t.shape.join(", ")}]`);
  const shapeWidth = Math.max(...shapes.map((shape) => shape.length));
  const buffers = inspection.parameterCount - inspection.trainableCount;
  const lines = [
    `model ${uri}`,
    `  artifact sha256 ${inspection.artifact?.digest ?? "(built in)"}; initial parameters: ${inspection.artifact?.hasWeights === true ? "its weights (fine-tuning)" : "seeded"}`,
    `  input [${inspection.inputShape.join(", ")}] -> output [${inspection.outputShape.join(", ")}]; loss ${inspection.loss}`,
    `  trains through ${inspection.plan === "fused" ? "trainfleet's fused gradient blocks" : `tf.js's registered gradients for ${inspection.tfjsGradientLayers.join(", ")} (slower on wasm)`}`,
    `  parameters: P = ${count(inspection.parameterCount)} in ${inspection.tensors.length} tensors (layout sha256 ${inspection.layoutDigest})`,
    ...(buffers === 0 ? [] : [`  of which ${count(buffers)} are buffers (non-trainable): not optimised; each step takes rank 0's values`]),
    ...inspection.tensors.map(
      (t, i) =>
        `    ${t.name.padEnd(width)}  ${shapes[i]!.padEnd(shapeWidth)}  ${count(t.shape.reduce((a, b) => a * b, 1)).padStart(12)}${t.trainable ? "" : "  buffer"}`,
    ),
    inspection.notExact.length === 0
      ? "  exact: yes (repeatable bit for bit, and the same for any number of workers)"
      : `  exact: no\n${inspection.notExact.map((reason) => `    - ${reason}`).join("\n")}`,
    `  checked: one forward and backward pass on 2 samples on ${backend}`,
  ];
  return `${lines.join("\n")}\n`;
}
