export * from "./coordinator.js";
export * from "./coordinator-server.js";
export * from "./job-phase.js";
export * from "./job-spec.js";
export * from "./ledger.js";
export * from "./run-coordinator.js";
export * from "./save-parameters.js";
export * from "./step-tracker.js";
