/**
 * @trainfleet/worker: a worker: the agent, the trainer, the models, compute backends and dataset readers (also as ./dataset and ./failure).
 * It may import proto, spec, kernels, runtime and dataplane; other packages import only what is re-exported here, by name.
 */
export type { BackendChoice } from "./compute/backend.js";
export { selectBackend } from "./compute/backend.js";
export { makeBatch } from "./compute/host-batch.js";
export { createModel } from "./compute/model.js";
export type { ImageDataset } from "./dataset/fashion-mnist.js";
export { defaultDataDirs, loadFashionMnist } from "./dataset/fashion-mnist.js";
export { scaleGradient } from "./gradient-scale.js";
export type { WorkerOptions } from "./run-worker.js";
export { runWorker } from "./run-worker.js";
