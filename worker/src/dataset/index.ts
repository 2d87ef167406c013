/**
 * The worker's datasets (subpath @trainfleet/worker/dataset): the built-in Fashion-MNIST,
 * sharded datasets read lazily through manifests, and the converter that writes them.
 */
export type { ConvertOptions, ConvertResult, WrittenManifest } from "./convert/convert-dataset.js";
export { convertDataset } from "./convert/convert-dataset.js";
export type { CsvHeader } from "./convert/csv-header.js";
export { csvHeaders } from "./convert/csv-header.js";
export type { DatasetFactsFields, ManifestReadOptions } from "./dataset-facts.js";
export { datasetFacts } from "./dataset-facts.js";
export type { ImageDataset, ImageSplit } from "./fashion-mnist.js";
export { defaultDataDirs, loadFashionMnist, locateFashionMnist, SYSTEM_DATA_DIR } from "./fashion-mnist.js";
export type { RecordSet, TrainingData } from "./record-set.js";
export { DEFAULT_CACHE_BYTES } from "./sharded-records.js";
export { defaultSklearnDataDirs, locateSklearnFile, SKLEARN_SYSTEM_DIR } from "./sklearn-data.js";
export type { TrainingDataOptions } from "./training-data.js";
export { openTrainingData } from "./training-data.js";
