export * from "./backend.js";
export * from "./host-batch.js";
export * from "./model.js";
