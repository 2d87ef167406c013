/**
 * @trainfleet/k8s: the operator (this entry loads @kubernetes/client-node); the TrainingJob names, types and conversion without it: ./resource.
 * It may import proto, spec and runtime; other packages import only what is re-exported here, by name.
 */

export { gangPlan, minimumSet } from "./gang.js";
export type { OperatorPeer } from "./job-network-policy.js";
export { defaultOperatorPeer } from "./job-network-policy.js";
export {
  coordinatorJobSpec,
  crdEnums,
  jobSpecFromTrainingJob,
  kubernetesOnly,
  pendingInProto,
  pinnedWhenResolved,
  protoField,
  protoFieldPaths,
  protoToCrd,
  setProtoField,
} from "./job-spec.js";
export type { JsonObject, JsonValue } from "./json.js";
export { isJsonObject, valueAt } from "./json.js";
export type { LeaderElectionTiming } from "./leader-election.js";
export { defaultLeaderElectionTiming, leaderElectionTimingProblem, leaderIdentity } from "./leader-election.js";
export { group, labels, plural, version } from "./names.js";
export type { OperatorOptions } from "./operator.js";
export { Operator } from "./operator.js";
export type { LeaderElectionOptions } from "./operator-leadership.js";
export type { PodGroupApi } from "./pod-group-apis.js";
export { coordinatorEndpoint } from "./pod-manifests.js";
export type { TrainingJob, TrainingJobSpec } from "./training-job.js";
