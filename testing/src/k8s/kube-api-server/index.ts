/**
 * The in-process Kubernetes API server for operator tests (no real kube-apiserver can run
 * here), exercised with the real @kubernetes/client-node by testing/test/kube-api-server.test.ts.
 */

export type { AddedAdmissionCheck, AdmissionCheck, AdmissionRequest, QuotaUse } from "./admission.js";
export { forbidden, missingPriorityClass, podSecurityViolation, quotaExceeded, webhookDenied } from "./admission.js";
export type { StatusDetails, StatusReason } from "./api-status.js";
export { ApiStatusError } from "./api-status.js";
export type { Fault, FaultMatch, InjectedFault } from "./fault-injector.js";
export { applyJsonPatch } from "./json-patch.js";
export type { KubeApiServer, KubeApiServerOptions } from "./kube-api-server.js";
export { startKubeApiServer } from "./kube-api-server.js";
export { kubeConfigFor } from "./kube-config.js";
export { kueueResourceFlavors, kueueResources, kueueWorkloads } from "./kueue-resources.js";
export { applyMergePatch } from "./merge-patch.js";
export { jsonPatch, mergePatch, strategicMergePatch } from "./patch.js";
export type { RequestFilter, RequestLog, RequestRecord } from "./request-log.js";
export { rbacResource } from "./request-log.js";
export type { Verb } from "./request-route.js";
export type { ResourceDefinition, ScalePaths } from "./resource-table.js";
export {
  apiVersionOf,
  coreConfigMaps,
  coreEvents,
  corePods,
  coreSecrets,
  coreServices,
  defaultResources,
  networkPolicies,
  resourceFromCrd,
  trainingJobs,
  volcanoPodGroups,
} from "./resource-table.js";
