export type { JsonObject, JsonValue } from "./json.js";
export { isJsonObject, valueAt } from "./json.js";
export { apiVersion, group, kind, plural, version } from "./names.js";
export type { PodGroupApi } from "./pod-group-apis.js";
export { podGroupApis } from "./pod-group-apis.js";
export { checkTrainingJob } from "./training-job-check.js";
