export * from "./coordinator-state.js";
export type { StateStore } from "./state-store.js";
export * from "./file-state-store.js";
export * from "./nats-state-store.js";
