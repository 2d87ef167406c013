/**
 * What a job's dataset holds, read from its manifests alone (never the shards): the digests,
 * record counts, sample shape, block size and whether the job's module decodes the records,
 * that the job pins into spec.dataset.facts, so every role derives the same model shape and
 * sample ledger without reading the data.
 */
import type { DatasetManifest, LoadedDatasetManifest, SourceOptions } from "@trainfleet/artifacts";
import { readDatasetManifest } from "@trainfleet/artifacts";
import type { DatasetFacts, DatasetSpec } from "@trainfleet/proto";
import { invalidField } from "@trainfleet/proto";
import { dataShape } from "@trainfleet/spec";
import { decodedByModule } from "./record-decoder.js";

/** spec.dataset.facts as plain fields: give them to create(DatasetFactsSchema, ...). evalDigest is "" when evaluation reads the training manifest. */
export type DatasetFactsFields = Omit<DatasetFacts, "$typeName" | "$unknown">;

export interface ManifestReadOptions {
  sources?: SourceOptions | undefined;
  signal?: AbortSignal | undefined;
}

export interface DatasetManifests {
  train: LoadedDatasetManifest;
  /** Absent: evaluation reads the training manifest. */
  evaluation: LoadedDatasetManifest | undefined;
}

export async function datasetFacts(dataset: DatasetSpec, options: ManifestReadOptions = {}): Promise<DatasetFactsFields> {
  if (dataset.manifest === "") {
    const shape = dataShape(dataset);
    // Loaded whole: no blocks (block shuffle takes training.shuffleWindow then).
    return { digest: "", evalDigest: "", ...shape, recordsPerBlock: 0, decodedByModule: false };
  }
  const { train, evaluation } = await readDatasetManifests(dataset, options);
  const { manifest } = train;
  return {
    digest: train.digest,
    evalDigest: evaluation?.digest ?? "",
    trainRecords: manifest.records,
    evalRecords: (evaluation ?? train).manifest.records,
    featureShape: [...manifest.features.shape],
    classes: manifest.label.kind === "classes" ? manifest.label.classes : 0,
    labelSize: manifest.label.kind === "regression" ? manifest.label.size : 0,
    // Block shuffle's window when training.shuffleWindow is 0: the unit a worker reads.
    recordsPerBlock: Math.max(0, ...manifest.files.flatMap((file) => file.blocks.map((block) => block.records))),
    // The module must be there to read either split; spec validation refuses a job without one.
    decodedByModule: [train, evaluation].some((loaded) => loaded !== undefined && decodedByModule(loaded)),
  };
}

/** Both manifests, checked to describe the same samples. */
export async function readDatasetManifests(dataset: DatasetSpec, options: ManifestReadOptions = {}): Promise<DatasetManifests> {
  const read = { sources: options.sources, signal: options.signal };
  const train = await readDatasetManifest(dataset.manifest, { ...read, sha256: dataset.sha256 });
  if (dataset.evalManifest === "") return { train, evaluation: undefined };
  const evaluation = await readDatasetManifest(dataset.evalManifest, read);
  const problem = sampleMismatch(train.manifest, evaluation.manifest);
  if (problem !== undefined) {
    throw invalidField(
      "spec.dataset.evalManifest",
      `${evaluation.safeUri} does not describe the samples of the training manifest ${train.safeUri}: ${problem}; give an evaluation set converted like the training set`,
    );
  }
  return { train, evaluation };
}

function sampleMismatch(train: DatasetManifest, evaluation: DatasetManifest): string | undefined {
  const aspects: [string, (m: DatasetManifest) => string][] = [
    ["features of shape", (m) => m.features.shape.join("x")],
    ["labels", (m) => (m.label.kind === "classes" ? `${m.label.classes} classes` : `regression of ${m.label.size} values`)],
    ["features", featureMapping],
  ];
  for (const [aspect, of] of aspects) {
    if (of(train) !== of(evaluation)) return `${aspect} ${of(evaluation)} (training: ${of(train)})`;
  }
  return undefined;
}

function featureMapping({ features }: DatasetManifest): string {
  return features.decoder === undefined
    ? `scaled by ${features.scale}, offset ${features.offset}`
    : `decoded by the job's module (features.decoder "${features.decoder}")`;
}
