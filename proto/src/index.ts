/**
 * @trainfleet/proto: the contract: the .proto files' generated messages and services, the grpc-js glue, the one error type, the status API's paths and JSON.
 * It imports nothing of trainfleet's; every other package imports what is re-exported here, by name.
 */
export { Code, codeName, invalidField, TrainfleetError } from "./errors.js";
export type {
  AssignmentsResponse,
  EvaluateAssignment,
  RegisterRequest,
  ReportCheckpointRequest,
  ReportEvaluationRequest,
  ReportFailureRequest,
  ReportGenerationRequest,
  ReportProgressRequest,
  ShardAssignment,
  ShardRestore,
  StepAssignment,
  WorkerAssignment,
} from "./gen/trainfleet/v1/coordinator_pb.js";
export {
  AssignmentsResponseSchema,
  CoordinatorService,
  EvaluateAssignmentSchema,
  JobService,
  MemberRole,
  RegisterRequestSchema,
  ReportCheckpointRequestSchema,
  ReportGenerationRequestSchema,
  ReportProgressRequestSchema,
  ShardRestoreSchema,
} from "./gen/trainfleet/v1/coordinator_pb.js";
export type { JobEvent, StepMetrics } from "./gen/trainfleet/v1/events_pb.js";
export { JobEventKind, JobEventSchema, StepMetricsSchema } from "./gen/trainfleet/v1/events_pb.js";
export type {
  DatasetFacts,
  DatasetSpec,
  JobSpec,
  JobStatus,
  LayersModelSpec,
  ModelArtifact,
  ModelSpec,
  ModelTensor,
  OptimizerSpec,
  ParameterServerStats,
  SeriesPoint,
} from "./gen/trainfleet/v1/job_pb.js";
export {
  CheckpointSpecSchema,
  DataPlane,
  DatasetFactsSchema,
  DatasetSpecSchema,
  JobPhase,
  JobSpecSchema,
  JobStatusSchema,
  JobWorkersSchema,
  LayersModelSpecSchema,
  Loss,
  ModelArtifactSchema,
  ModelSpecSchema,
  ModelTensorSchema,
  OptimizerSpecSchema,
  ParameterServerStatsSchema,
  ParameterServerStatusSchema,
  ParameterServersSpecSchema,
  Placement,
  ShardRangeSchema,
  Shuffle,
  TrainingMode,
  TrainingSpecSchema,
  WireDtype,
  WorkerState,
  WorkerStatusSchema,
  WorkersSpecSchema,
} from "./gen/trainfleet/v1/job_pb.js";
export type { PushRequest } from "./gen/trainfleet/v1/paramserver_pb.js";
export { ParameterServerService, PushRequestSchema } from "./gen/trainfleet/v1/paramserver_pb.js";
export type { CallOptions, ClientOf, ClientSecurity } from "./grpc-client.js";
export { createClient } from "./grpc-client.js";
export type { RunningServer } from "./grpc-server.js";
export { startServer } from "./grpc-server.js";
export { addService, grpcServiceDefinition } from "./grpc-service.js";
export { maxChunkBytes } from "./limits.js";
export type { ExpectedPeer, PeerIdentity, PeerRole } from "./security/peer-identity.js";
export { identityUri, parseIdentityUri, peerIdentityOf, peerMismatch, peerRoles } from "./security/peer-identity.js";
export type { CredentialUpdates, TransportSecurity } from "./security/transport-security.js";
export { credentialsNow } from "./security/transport-security.js";
export { isFinished } from "./status-api/job-phases.js";
export { jobStatusFromJson, jobStatusToJson, jobWorkersFromJson, jobWorkersToJson } from "./status-api/status-json.js";
export { parseJobPath, statusPaths } from "./status-api/status-paths.js";
