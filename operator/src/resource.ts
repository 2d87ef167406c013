/**
 * The TrainingJob resource without the operator: names, types and the JobSpec conversion. The
 * CLI's commands import this entry (`@trainfleet/operator/resource`), which does not load
 * client-node, so that every trainfleet role starts without it.
 */
export * from "./json.js";
export * from "./names.js";
export * from "./training-job.js";
export * from "./job-spec.js";
export { checkTrainingJob } from "./training-job-check.js";
export { podGroupApis } from "./pod-group-apis.js";
export type { PodGroupApi } from "./pod-group-apis.js";
