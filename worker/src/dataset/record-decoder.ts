/**
 * A manifest's record decoder (features.decoder "module"): the job's module's decodeRecords,
 * found once when the data is opened and checked on every block it decodes, so a module that
 * is missing, or returns too few values or a NaN, fails naming the module, the file and the
 * block rather than training on garbage. The module is imported again here; Node caches
 * `import()`, so it is the same instance the model loader registered layers from.
 */
import type { LoadedDatasetManifest } from "@trainfleet/artifacts";
import { featureWidth } from "@trainfleet/artifacts";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { RecordDecoder as ModuleDecoder } from "../compute/user-module.js";
import { loadUserModule } from "../compute/user-module.js";
import type { BlockColumns } from "./formats/shard-format.js";

const field = "spec.model.layers.module";

export interface RecordDecoder {
  /** The module's path, as the spec gives it. */
  module: string;
  /** The block's features (records x featureWidth), checked; `where` names the file and block in errors. */
  decode(columns: BlockColumns, records: number, where: string): Promise<Float32Array>;
}

/** Whether the manifest's features are decoded by the job's module. */
export function decodedByModule(loaded: LoadedDatasetManifest): boolean {
  return loaded.manifest.features.decoder === "module";
}

/** The decoder of a manifest that asks for one; `module` is spec.model.layers.module ("" or undefined: none). */
export async function loadRecordDecoder(module: string | undefined, loaded: LoadedDatasetManifest): Promise<RecordDecoder> {
  if (module === undefined || module === "") throw missingDecoder(loaded, "the job has no module");
  const decodeRecords = (await loadUserModule(module)).decodeRecords;
  if (decodeRecords === undefined) throw missingDecoder(loaded, `the module ${module} exports no decodeRecords`);
  const { manifest } = loaded;
  const names = manifest.features.columns;
  const width = featureWidth(manifest);
  const shape = `[${manifest.features.shape.join(", ")}]`;
  return {
    module,
    async decode(blockColumns, records, where) {
      const fail = (problem: string, cause?: unknown) =>
        new TrainfleetError(
          Code.INVALID_ARGUMENT,
          `${field}: ${module}: decodeRecords ${problem} for ${where} (${records} records); ` +
            `expected ${records * width} finite numbers: ${records} records x ${width} features (features.shape ${shape} in ${loaded.safeUri})`,
          { field, cause },
        );
      const columns = Object.fromEntries(names.map((name) => [name, blockColumns.get(name)!]));
      let decoded: Awaited<ReturnType<ModuleDecoder>>;
      try {
        decoded = await decodeRecords({ records, columns });
      } catch (error) {
        throw fail(`threw ${error instanceof Error ? error.message : String(error)}`, error);
      }
      if (typeof decoded !== "object" || decoded === null || typeof decoded.length !== "number") {
        throw fail(`returned ${decoded === null ? "null" : typeof decoded}, not an array of numbers`);
      }
      if (decoded.length !== records * width) throw fail(`returned ${decoded.length} values`);
      // A copy: the module may reuse its array for the next block, and the cache keeps this one.
      const features = new Float32Array(decoded.length);
      for (let i = 0; i < features.length; i++) {
        const value = decoded[i];
        if (typeof value !== "number" || !Number.isFinite(value)) {
          throw fail(`returned ${typeof value === "number" ? value : typeof value} at value ${i} (record ${Math.floor(i / width)})`);
        }
        features[i] = value;
      }
      return features;
    },
  };
}

/** FAILED_PRECONDITION: a manifest asks for the module's decoder, and there is none. */
export function missingDecoder(loaded: LoadedDatasetManifest, problem: string): TrainfleetError {
  return new TrainfleetError(
    Code.FAILED_PRECONDITION,
    `${field}: ${loaded.safeUri} says features.decoder "module" (its records are decoded by the job's module), but ${problem}; ` +
      "give spec.model.layers.module (--model-module) exporting decodeRecords({ records, columns }), or convert the data without a decoder",
    { field },
  );
}
