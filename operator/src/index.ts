export * from "./json.js";
export * from "./names.js";
export * from "./training-job.js";
export * from "./job-spec.js";
