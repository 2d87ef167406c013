// What users bring, read from where it lies: byte sources, digests, model.json weights, dataset manifests.
// May import: proto.
export type { ByteSource, S3Credentials, S3SourceOptions, SourceOptions } from "./byte-source.js";
export { openSource, resolveRelative } from "./byte-source.js";
export {
  columnWidth,
  DATASET_MANIFEST_FORMAT,
  type DatasetBlock,
  type DatasetByteRange,
  type DatasetColumn,
  type DatasetFeatures,
  type DatasetFile,
  type DatasetFileFormat,
  type DatasetLabel,
  type DatasetManifest,
  type DatasetValueType,
  datasetFileFormats,
  datasetValueTypes,
  featureWidth,
  type LoadedDatasetManifest,
  parseDatasetManifest,
  type ReadDatasetManifestOptions,
  readDatasetManifest,
} from "./dataset-manifest.js";
export { sha256Hex } from "./digest.js";
export {
  type LayersArtifact,
  type LayersWeightSpec,
  type ReadLayersArtifactOptions,
  readLayersArtifact,
  weightValues,
} from "./layers-artifact.js";
export { redactUri } from "./safe-uri.js";
