/**
 * A tf.js Layers model as it lies on disk or behind a URL: model.json (what
 * `model.save()` and `tensorflowjs_converter --output_format tfjs_layers_model` write,
 * Keras models included) and the weight files its weightsManifest names. Read here as
 * plain bytes and JSON, with no tf.js, so the coordinator and the parameter servers can
 * pin and seed a job from it; workers hand the same bytes to tf.js. Everything trainfleet
 * cannot train from is refused here, naming the file and the fix.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { SourceOptions } from "./byte-source.js";
import { openSource, resolveRelative } from "./byte-source.js";
import { sha256Hex } from "./digest.js";

export interface LayersWeightSpec {
  name: string;
  shape: number[];
  /** Model weights are float32; an optimizer's state (saved with includeOptimizer) may hold int32 counters. */
  dtype: "float32" | "int32";
  /** "optimizer": the optimizer's state, which tf.js saves after the model's weights; trainfleet does not use it. */
  group?: "optimizer";
}

export interface LayersArtifact {
  /** model.json's location, as given. */
  uri: string;
  modelJsonBytes: Uint8Array;
  /** model.json, parsed. */
  modelJson: Record<string, unknown>;
  /** The Keras-style topology (class_name + config), unwrapped from a converter's model_config. */
  modelTopology: Record<string, unknown>;
  /** What model.compile() recorded (loss, optimizer, metrics), if the model was compiled before saving. */
  trainingConfig: Record<string, unknown> | undefined;
  /** Every weight of every weightsManifest group, in manifest order. */
  weightSpecs: LayersWeightSpec[];
  /** The weight files concatenated in manifest order; undefined when model.json names none. */
  weightData: Uint8Array | undefined;
  /** sha256 (hex) over model.json, then each weight file in manifest order. */
  digest: string;
  modelJsonSha256: string;
}

export interface ReadLayersArtifactOptions {
  /** sha256 (hex) that model.json must have (spec.model.layers.sha256). */
  sha256?: string | undefined;
  sources?: SourceOptions | undefined;
  signal?: AbortSignal | undefined;
}

export async function readLayersArtifact(uri: string, options: ReadLayersArtifactOptions = {}): Promise<LayersArtifact> {
  const { signal } = options;
  const source = openSource(uri, options.sources);
  // Messages name the file as the source shows it: without any credentials in the URL.
  const shown = source.uri;
  const modelJsonBytes = await source.readAll(signal);
  const modelJsonSha256 = sha256Hex(modelJsonBytes);
  const expected = options.sha256?.trim().toLowerCase();
  if (expected !== undefined && expected !== "" && expected !== modelJsonSha256) {
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `${shown}: sha256 is ${modelJsonSha256}, but spec.model.layers.sha256 expects ${expected}: ` +
        "point the job at the model it was written for, or update the sha256 (sha256sum model.json)",
      { field: "spec.model.layers.sha256" },
    );
  }
  const modelJson = parseModelJson(shown, modelJsonBytes);
  const modelTopology = layersTopology(shown, modelJson);
  const groups = manifestGroups(shown, modelJson);
  const weightSpecs = groups.flatMap((group) => group.weights);

  const files: Uint8Array[] = [];
  for (const group of groups) {
    const groupFiles: Uint8Array[] = [];
    for (const path of group.paths) {
      const location = resolveRelative(uri, path);
      const bytes = await openSource(location, options.sources)
        .readAll(signal)
        .catch((error: unknown) => {
          const cause = TrainfleetError.from(error);
          throw new TrainfleetError(cause.code, `${shown} names the weight file ${path}: ${cause.message}`, { cause: error });
        });
      groupFiles.push(bytes);
    }
    const held = groupFiles.reduce((sum, bytes) => sum + bytes.length, 0);
    const needed = group.weights.reduce((sum, w) => sum + 4 * elementCount(w.shape), 0);
    if (held !== needed) {
      const sizes = group.paths.map((path, i) => `${path} (${groupFiles[i]!.length} bytes)`).join(", ");
      throw new TrainfleetError(
        Code.INVALID_ARGUMENT,
        `${shown}: the weight file(s) ${sizes} hold ${held} bytes, but the weightsManifest's weights ` +
          `${group.weights.map((w) => w.name).join(", ")} need ${needed} (4 bytes a value): ` +
          `the files are ${held < needed ? "truncated" : "longer than the manifest says"}; save the model again`,
      );
    }
    files.push(...groupFiles);
  }
  const weightData = files.length === 0 ? undefined : concat(files);
  const trainingConfig = asObject(modelJson.trainingConfig) ?? asObject(asObject(modelJson.modelTopology)?.training_config);
  return {
    uri,
    modelJsonBytes,
    modelJson,
    modelTopology,
    trainingConfig,
    weightSpecs,
    weightData,
    digest: sha256Hex(modelJsonBytes, ...files),
    modelJsonSha256,
  };
}

/** Each model weight's values by its manifest name (copies, so each is aligned and independent); no optimizer state. */
export function weightValues(artifact: LayersArtifact): Map<string, Float32Array> {
  const values = new Map<string, Float32Array>();
  const data = artifact.weightData;
  if (data === undefined) return values;
  let offset = 0;
  for (const spec of artifact.weightSpecs) {
    const bytes = 4 * elementCount(spec.shape);
    if (spec.group !== "optimizer") {
      const copy = data.slice(offset, offset + bytes);
      values.set(spec.name, new Float32Array(copy.buffer, copy.byteOffset, bytes / 4));
    }
    offset += bytes;
  }
  return values;
}

interface ManifestGroup {
  paths: string[];
  weights: LayersWeightSpec[];
}

function parseModelJson(uri: string, bytes: Uint8Array): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new TrainfleetError(
      Code.INVALID_ARGUMENT,
      `${uri}: not a tf.js model.json (${error instanceof Error ? error.message : String(error)}); give the model.json that model.save() wrote`,
      { cause: error },
    );
  }
  const object = asObject(parsed);
  if (object === undefined) throw new TrainfleetError(Code.INVALID_ARGUMENT, `${uri}: not a tf.js model.json (not a JSON object)`);
  return object;
}

/**
 * The Layers topology, or a refusal: a GraphModel (a frozen TensorFlow graph) carries no
 * layers and no trainable variables, so it cannot be trained.
 */
function layersTopology(uri: string, modelJson: Record<string, unknown>): Record<string, unknown> {
  const graphModel = () =>
    new TrainfleetError(
      Code.INVALID_ARGUMENT,
      `${uri} is a tf.js GraphModel; GraphModels are inference-only: save a Layers model ` +
        "(tf.LayersModel.save / tensorflowjs_converter --output_format tfjs_layers_model)",
      { field: "spec.model.layers.uri" },
    );
  if (modelJson.format === "graph-model") throw graphModel();
  const topology = asObject(modelJson.modelTopology);
  if (topology === undefined || "node" in topology) throw graphModel();
  // tensorflowjs_converter wraps a Keras model as {keras_version, backend, model_config}.
  const model = asObject(topology.model_config) ?? topology;
  if (typeof model.class_name !== "string") throw graphModel();
  return model;
}

function manifestGroups(uri: string, modelJson: Record<string, unknown>): ManifestGroup[] {
  const manifest = modelJson.weightsManifest;
  if (manifest === undefined) return [];
  const bad = (problem: string) => new TrainfleetError(Code.INVALID_ARGUMENT, `${uri}: weightsManifest ${problem}; save the model again`);
  if (!Array.isArray(manifest)) throw bad("is not a list of weight groups");
  const names = new Set<string>();
  return manifest.map((entry: unknown, g): ManifestGroup => {
    const group = asObject(entry);
    if (group === undefined || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw bad(`group ${g} lacks its "paths" or "weights" list`);
    }
    const paths = group.paths.map((path: unknown) => {
      if (typeof path !== "string" || path === "") throw bad(`group ${g} has a path that is not a file name`);
      return path;
    });
    const weights = group.weights.map((raw: unknown): LayersWeightSpec => {
      const weight = asObject(raw);
      const name = weight?.name;
      const shape = weight?.shape;
      if (weight === undefined || typeof name !== "string") throw bad(`group ${g} has a weight without a name`);
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
        throw bad(`weight ${name} has no valid shape`);
      }
      if (weight.quantization !== undefined) {
        throw new TrainfleetError(
          Code.INVALID_ARGUMENT,
          `${uri}: weight ${name} is quantized (${JSON.stringify(weight.quantization)}); trainfleet trains float32 weights: ` +
            "save the model without --quantize_* (tensorflowjs_converter) or with model.save()",
        );
      }
      const optimizer = weight.group === "optimizer";
      if (weight.dtype !== "float32" && !(optimizer && weight.dtype === "int32")) {
        throw new TrainfleetError(
          Code.INVALID_ARGUMENT,
          `${uri}: weight ${name} is ${String(weight.dtype)}; trainfleet trains float32 weights: cast the model to float32 before saving it`,
        );
      }
      if (names.has(name)) throw bad(`names the weight ${name} twice`);
      names.add(name);
      return { name, shape: shape as number[], dtype: weight.dtype, ...(optimizer ? { group: "optimizer" as const } : {}) };
    });
    return { paths, weights };
  });
}

function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
