/**
 * @trainfleet/worker: a worker: the agent, the trainer, the models, compute backends and dataset readers (also as ./dataset and ./failure).
 * It may import proto, spec, kernels, runtime, artifacts and dataplane; other packages import only what is re-exported here, by name.
 */
export type { BackendChoice } from "./compute/backend.js";
export { selectBackend } from "./compute/backend.js";
export type { Model } from "./compute/model.js";
export { buildModel } from "./compute/model.js";
export type { ModelInspection } from "./compute/model-inspection.js";
export { inspectModel } from "./compute/model-inspection.js";
export { writeTrainedModel } from "./compute/trained-model-writer.js";
export { defaultDataDirs } from "./dataset/fashion-mnist.js";
export type { TrainingData } from "./dataset/record-set.js";
export { openTrainingData } from "./dataset/training-data.js";
export { scaleGradient } from "./gradient-scale.js";
export { pinJobArtifacts } from "./pin-job-artifacts.js";
export type { WorkerOptions } from "./run-worker.js";
export { runWorker } from "./run-worker.js";
