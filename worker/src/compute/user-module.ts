/**
 * A user's ES module (spec.model.layers.module): plain code that only worker processes
 * run, from a local path (in Kubernetes a path inside the job's image), never from a URL.
 * It gets trainfleet's own tf.js namespace rather than importing tf.js, so one tf.js
 * instance runs and its custom layers register where the model loader looks for them.
 */
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type * as tfc from "@tensorflow/tfjs-core";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { TfNamespace } from "./tf-namespace.js";

export interface UserModelModule {
  /** Registers custom layer classes: tf.serialization.registerClass(MyLayer). */
  registerLayers?: (tf: TfNamespace) => void | Promise<void>;
  /**
   * The batch's mean loss as a scalar. labels: int32 [n] class indices (classification) or
   * float32 [n, labelSize] (regression); predictions: the model's output [n, outputs].
   */
  loss?: (tf: TfNamespace, labels: tfc.Tensor, predictions: tfc.Tensor) => tfc.Scalar;
  /**
   * The record decoder of a dataset whose manifest says `features.decoder: "module"`: a
   * block's feature columns in, its features out (records x the product of features.shape,
   * row-major, rounded to float32). Called once per block a worker reads; it must be
   * deterministic (the same columns give the same values, on every worker and every run),
   * or the run is not exact.
   */
  decodeRecords?: RecordDecoder;
}

/** What decodeRecords gets: one block of records. */
export interface DecodeRecordsInput {
  records: number;
  /** The manifest's feature columns by name, records x the column's width each: uint8 columns as bytes, every other type as float64. */
  columns: Record<string, Uint8Array | Float64Array>;
}

export type RecordDecoder = (input: DecodeRecordsInput) => Float32Array | ArrayLike<number> | Promise<Float32Array | ArrayLike<number>>;

const field = "spec.model.layers.module";

/** Imports the module at `path` (relative to the working directory) and checks what it exports. */
export async function loadUserModule(path: string): Promise<UserModelModule> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path) && !path.startsWith("file://")) {
    throw new TrainfleetError(
      Code.INVALID_ARGUMENT,
      `${field}: ${path} is a URL; a module is code the workers run, so it comes from a local path (in Kubernetes, from the job's image)`,
      { field },
    );
  }
  const url = path.startsWith("file://") ? path : pathToFileURL(isAbsolute(path) ? path : resolve(path)).href;
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND" ? Code.NOT_FOUND : Code.INVALID_ARGUMENT;
    throw new TrainfleetError(code, `${field}: ${path} could not be imported: ${error instanceof Error ? error.message : String(error)}`, {
      field,
      cause: error,
    });
  }
  for (const name of ["registerLayers", "loss", "decodeRecords"] as const) {
    if (loaded[name] !== undefined && typeof loaded[name] !== "function") {
      throw new TrainfleetError(Code.INVALID_ARGUMENT, `${field}: ${path} exports ${name}, but not as a function`, { field });
    }
  }
  return loaded as UserModelModule;
}
