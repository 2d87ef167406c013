export * from "./flags.js";
export * from "./progress-view.js";
