/** The TrainingJob <-> JobSpec table lives with the operator, which converts; the CRD tests check it. */
export {
  crdEnums,
  jobSpecFromTrainingJob,
  kubernetesOnly,
  pendingInProto,
  protoField,
  protoFieldPaths,
  protoToCrd,
  setProtoField,
} from "@trainfleet/k8s";
