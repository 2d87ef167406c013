import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readLayersArtifact, sha256Hex, weightValues } from "@trainfleet/artifacts";
import { Code } from "@trainfleet/proto";
import { rejection } from "@trainfleet/testing/rejection";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "layers-artifact-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A Sequential Dense(3) on 2 inputs, as tf.js's model.save() writes it (topology trimmed to what matters). */
const topology = {
  class_name: "Sequential",
  config: {
    name: "sequential_1",
    layers: [{ class_name: "Dense", config: { units: 3, activation: "softmax", name: "dense_Dense1", batch_input_shape: [null, 2] } }],
  },
  keras_version: "tfjs-layers 4.22.0",
  backend: "tensor_flow.js",
};
const kernel = Float32Array.from([1, 2, 3, 4, 5, 6]);
const bias = Float32Array.from([0.5, -0.5, 0.25]);
const bytes = (values: Float32Array) => new Uint8Array(values.buffer.slice(0));

interface Written {
  uri: string;
  json: Uint8Array;
  files: Uint8Array[];
}

/** Writes model.json (with `edit` applied) and the given weight files into a fresh folder. */
async function writeModel(
  name: string,
  edit: (json: Record<string, unknown>) => void = () => {},
  files?: Record<string, Uint8Array>,
): Promise<Written> {
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  const weightFiles = files ?? {
    "group1-shard1of2.bin": bytes(kernel).subarray(0, 16),
    "group1-shard2of2.bin": concat(bytes(kernel).subarray(16), bytes(bias)),
  };
  const modelJson: Record<string, unknown> = {
    modelTopology: topology,
    format: "layers-model",
    generatedBy: "TensorFlow.js tfjs-layers v4.22.0",
    convertedBy: null,
    weightsManifest: [
      {
        paths: Object.keys(weightFiles),
        weights: [
          { name: "dense_Dense1/kernel", shape: [2, 3], dtype: "float32" },
          { name: "dense_Dense1/bias", shape: [3], dtype: "float32" },
        ],
      },
    ],
    trainingConfig: { loss: "categoricalCrossentropy", optimizer_config: { class_name: "SGD", config: { learningRate: 0.1 } } },
  };
  edit(modelJson);
  const json = new TextEncoder().encode(JSON.stringify(modelJson));
  await writeFile(join(folder, "model.json"), json);
  for (const [file, data] of Object.entries(weightFiles)) await writeFile(join(folder, file), data);
  return { uri: join(folder, "model.json"), json, files: Object.values(weightFiles) };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((part) => Array.from(part)));
}

describe("readLayersArtifact", () => {
  it("reads model.json and its weight files in manifest order, with the digest over all of them", async () => {
    const model = await writeModel("ok");
    const artifact = await readLayersArtifact(model.uri);
    expect(artifact.modelTopology.class_name).toBe("Sequential");
    expect(artifact.trainingConfig?.loss).toBe("categoricalCrossentropy");
    expect(artifact.weightSpecs).toEqual([
      { name: "dense_Dense1/kernel", shape: [2, 3], dtype: "float32" },
      { name: "dense_Dense1/bias", shape: [3], dtype: "float32" },
    ]);
    expect(Array.from(artifact.weightData!)).toEqual(Array.from(concat(bytes(kernel), bytes(bias))));
    expect(artifact.modelJsonSha256).toBe(sha256Hex(model.json));
    expect(artifact.digest).toBe(sha256Hex(model.json, ...model.files));
    const values = weightValues(artifact);
    expect([...values.keys()]).toEqual(["dense_Dense1/kernel", "dense_Dense1/bias"]);
    expect(Array.from(values.get("dense_Dense1/kernel")!)).toEqual(Array.from(kernel));
    expect(Array.from(values.get("dense_Dense1/bias")!)).toEqual(Array.from(bias));
  });

  it("accepts the sha256 it was given, in either case, and refuses another naming both", async () => {
    const model = await writeModel("sha");
    const good = sha256Hex(model.json);
    expect((await readLayersArtifact(model.uri, { sha256: good.toUpperCase() })).digest).toBe(sha256Hex(model.json, ...model.files));
    const wrong = "0".repeat(64);
    const error = await rejection(readLayersArtifact(model.uri, { sha256: wrong }));
    expect(error.code).toBe(Code.FAILED_PRECONDITION);
    expect(error.field).toBe("spec.model.layers.sha256");
    expect(error.message).toContain(`sha256 is ${good}`);
    expect(error.message).toContain(`expects ${wrong}`);
  });

  it("unwraps a converted Keras model's model_config and finds its training_config", async () => {
    const model = await writeModel("keras", (json) => {
      json.modelTopology = {
        keras_version: "2.15.0",
        backend: "tensorflow",
        model_config: topology,
        training_config: { loss: "sparse_categorical_crossentropy" },
      };
      delete json.trainingConfig;
    });
    const artifact = await readLayersArtifact(model.uri);
    expect(artifact.modelTopology.class_name).toBe("Sequential");
    expect(artifact.trainingConfig?.loss).toBe("sparse_categorical_crossentropy");
  });

  it("a model.json without weights has no weight data (the job seeds its parameters)", async () => {
    const model = await writeModel("no-weights", (json) => delete json.weightsManifest, {});
    const artifact = await readLayersArtifact(model.uri);
    expect(artifact.weightSpecs).toEqual([]);
    expect(artifact.weightData).toBeUndefined();
    expect(weightValues(artifact).size).toBe(0);
    expect(artifact.digest).toBe(sha256Hex(model.json));
  });

  it.each([
    ["format graph-model", (json: Record<string, unknown>) => (json.format = "graph-model")],
    ["a topology of graph nodes", (json: Record<string, unknown>) => (json.modelTopology = { node: [{ name: "x", op: "Placeholder" }] })],
    ["no topology", (json: Record<string, unknown>) => delete json.modelTopology],
    ["a topology without class_name", (json: Record<string, unknown>) => (json.modelTopology = { config: {} })],
  ])("refuses a GraphModel (%s), saying how to save a Layers model", async (name, edit) => {
    const model = await writeModel(`graph-${name.replaceAll(" ", "-")}`, edit);
    const error = await rejection(readLayersArtifact(model.uri));
    expect(error.code).toBe(Code.INVALID_ARGUMENT);
    expect(error.message).toContain(model.uri);
    expect(error.message).toContain("GraphModels are inference-only");
    expect(error.message).toContain("--output_format tfjs_layers_model");
  });

  it("refuses float16 and quantized weights, naming the weight", async () => {
    const half = await writeModel("float16", (json) => {
      const group = (json.weightsManifest as Array<{ weights: Array<Record<string, unknown>> }>)[0]!;
      group.weights[1]!.dtype = "float16";
    });
    const halfError = await rejection(readLayersArtifact(half.uri));
    expect(halfError.code).toBe(Code.INVALID_ARGUMENT);
    expect(halfError.message).toContain("weight dense_Dense1/bias is float16");

    const quantized = await writeModel("quantized", (json) => {
      const group = (json.weightsManifest as Array<{ weights: Array<Record<string, unknown>> }>)[0]!;
      group.weights[0]!.quantization = { dtype: "uint8", scale: 0.1, min: -1 };
    });
    const quantizedError = await rejection(readLayersArtifact(quantized.uri));
    expect(quantizedError.message).toContain("weight dense_Dense1/kernel is quantized");
    expect(quantizedError.message).toContain("--quantize_");
  });

  it("keeps an optimizer's saved state (int32 counters included) out of the model's weight values", async () => {
    const iterations = new Uint8Array(Int32Array.from([7]).buffer);
    const model = await writeModel(
      "optimizer",
      (json) => {
        const group = (json.weightsManifest as Array<{ weights: Array<Record<string, unknown>> }>)[0]!;
        group.weights.push({ name: "iter", shape: [], dtype: "int32", group: "optimizer" });
      },
      { "weights.bin": concat(bytes(kernel), bytes(bias), iterations) },
    );
    const artifact = await readLayersArtifact(model.uri);
    expect(artifact.weightSpecs.at(-1)).toEqual({ name: "iter", shape: [], dtype: "int32", group: "optimizer" });
    expect([...weightValues(artifact).keys()]).toEqual(["dense_Dense1/kernel", "dense_Dense1/bias"]);
  });

  it("refuses weight files shorter or longer than the manifest says, naming them and their sizes", async () => {
    const short = await writeModel("short", undefined, { "weights.bin": bytes(kernel) });
    const shortError = await rejection(readLayersArtifact(short.uri));
    expect(shortError.code).toBe(Code.INVALID_ARGUMENT);
    expect(shortError.message).toContain("weights.bin (24 bytes) hold 24 bytes");
    expect(shortError.message).toContain("need 36");
    expect(shortError.message).toContain("truncated");

    const long = await writeModel("long", undefined, { "weights.bin": concat(bytes(kernel), bytes(bias), new Uint8Array(4)) });
    const longError = await rejection(readLayersArtifact(long.uri));
    expect(longError.message).toContain("weights.bin (40 bytes)");
    expect(longError.message).toContain("longer than the manifest says");
  });

  it("refuses a missing weight file as NOT_FOUND, naming model.json and the file", async () => {
    const model = await writeModel("missing", (json) => {
      (json.weightsManifest as Array<{ paths: string[] }>)[0]!.paths.push("group1-shard3of3.bin");
    });
    const error = await rejection(readLayersArtifact(model.uri));
    expect(error.code).toBe(Code.NOT_FOUND);
    expect(error.message).toContain(`${model.uri} names the weight file group1-shard3of3.bin`);
  });

  it("refuses a file that is not JSON, and a missing model.json", async () => {
    const folder = join(dir, "not-json");
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, "model.json"), "<html>not found</html>");
    const error = await rejection(readLayersArtifact(join(folder, "model.json")));
    expect(error.code).toBe(Code.INVALID_ARGUMENT);
    expect(error.message).toContain("not a tf.js model.json");
    expect((await rejection(readLayersArtifact(join(folder, "absent.json")))).code).toBe(Code.NOT_FOUND);
  });
});
