export * from "./compute/index.js";
export * from "./dataset/fashion-mnist.js";
export * from "./dataset/idx.js";
export * from "./gradient-scale.js";
export * from "./run-worker.js";
export * from "./trainer.js";
export * from "./worker-failure.js";
