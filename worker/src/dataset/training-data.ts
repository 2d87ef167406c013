/**
 * Opens what a job trains and evaluates on, from its DatasetSpec: the built-in Fashion-MNIST
 * in memory, or a sharded dataset's manifests read lazily. The manifests are checked against
 * the spec's sha256 and the digests pinned in spec.dataset.facts, so a worker never trains on
 * data other than what the job (or the checkpoint it resumes) was made with. A manifest whose
 * features the job's module decodes gets its decoder here, so a missing one fails at open.
 */
import type { LoadedDatasetManifest, SourceOptions } from "@trainfleet/artifacts";
import type { DatasetSpec } from "@trainfleet/proto";
import { Code, TrainfleetError } from "@trainfleet/proto";
import { readDatasetManifests } from "./dataset-facts.js";
import { loadFashionMnist } from "./fashion-mnist.js";
import { inMemoryRecords } from "./in-memory-records.js";
import { decodedByModule, loadRecordDecoder } from "./record-decoder.js";
import type { TrainingData } from "./record-set.js";
import { openShardedRecords } from "./sharded-records.js";

export interface TrainingDataOptions {
  /** Where the built-in Fashion-MNIST is searched for (see defaultDataDirs). */
  dataDirs: string[];
  sources?: SourceOptions | undefined;
  /** Decoded blocks kept per split (default 64 MiB). */
  cacheBytes?: number | undefined;
  /** The job's module (spec.model.layers.module; "" or undefined: none): decodes the records of a manifest that says features.decoder "module". */
  module?: string | undefined;
  signal?: AbortSignal | undefined;
}

export async function openTrainingData(dataset: DatasetSpec, options: TrainingDataOptions): Promise<TrainingData> {
  if (dataset.manifest === "") {
    if (dataset.name !== "fashion-mnist") {
      throw new TrainfleetError(
        Code.INVALID_ARGUMENT,
        `spec.dataset.name: unknown dataset "${dataset.name}"; built in: fashion-mnist; or give spec.dataset.manifest`,
      );
    }
    const data = await loadFashionMnist(options.dataDirs);
    return { train: inMemoryRecords(data.train), eval: inMemoryRecords(data.test), close: async () => {} };
  }
  const { train, evaluation } = await readDatasetManifests(dataset, options);
  checkPinned(dataset, train, evaluation);
  const open = async (loaded: LoadedDatasetManifest) =>
    openShardedRecords(loaded, {
      sources: options.sources,
      cacheBytes: options.cacheBytes,
      decoder: decodedByModule(loaded) ? await loadRecordDecoder(options.module, loaded) : undefined,
    });
  const trainRecords = await open(train);
  // Without an evaluation manifest, evaluation reads the training records (and shares their cache).
  const evalRecords =
    evaluation === undefined
      ? trainRecords
      : await open(evaluation).catch((error: unknown) => {
          trainRecords.close();
          throw error;
        });
  return {
    train: trainRecords,
    eval: evalRecords,
    async close() {
      for (const records of new Set([trainRecords, evalRecords])) records.close();
    },
  };
}

/** The manifests must be the ones the job was resolved with (spec.dataset.facts). */
function checkPinned(dataset: DatasetSpec, train: LoadedDatasetManifest, evaluation: LoadedDatasetManifest | undefined): void {
  const facts = dataset.facts;
  if (facts === undefined || facts.digest === "") return;
  const pairs: [string, string, LoadedDatasetManifest | undefined][] = [
    ["spec.dataset.manifest", facts.digest, train],
    ["spec.dataset.evalManifest", facts.evalDigest, evaluation],
  ];
  for (const [field, pinned, loaded] of pairs) {
    if (loaded === undefined || pinned === "" || loaded.digest === pinned) continue;
    throw new TrainfleetError(
      Code.FAILED_PRECONDITION,
      `${field}: ${loaded.safeUri} changed since the job was pinned to it (sha256 ${pinned}, now ${loaded.digest}); ` +
        "a job, and a checkpoint of it, trains only the data it started with: restore the manifest, or start a new job",
      { field },
    );
  }
}
