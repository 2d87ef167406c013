/**
 * @trainfleet/k8s/resource: the TrainingJob resource without the operator (names, types, JSON helpers, the check a
 * new job gets). The CLI imports this entry, which does not load @kubernetes/client-node, so every role starts without it.
 */

export { defaultTerminationMessagePath, jobFailedExitCode, terminationMessage } from "./coordinator-exit.js";
export { jobSpecFromTrainingJob } from "./job-spec.js";
export type { JsonObject, JsonValue } from "./json.js";
export { isJsonObject, valueAt } from "./json.js";
export { apiVersion, group, kind, plural, version } from "./names.js";
export type { PodGroupApi } from "./pod-group-apis.js";
export { podGroupApis } from "./pod-group-apis.js";
export { checkTrainingJob } from "./training-job-check.js";
