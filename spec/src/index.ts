/**
 * @trainfleet/spec: what a JobSpec means to every role: its defaults, resolveJobSpec, the parameter layout and partition, checkpoint file names.
 * It may import proto; other packages import only what is re-exported here, by name.
 */
export {
  checkpointFileVersion,
  checkpointManifestFileName,
  latestCheckpointFileName,
  shardCheckpointFileName,
} from "./checkpoint-names.js";
export type { DataShape } from "./data-shape.js";
export { dataShape, featureSize } from "./data-shape.js";
export {
  defaultJobId,
  defaultJobSpec,
  defaultMaxWorkers,
  defaultMinWorkers,
  defaultShards,
  modelDefaults,
  optimizerDefaults,
} from "./job-spec-defaults.js";
export type { MembersToStart } from "./members-to-start.js";
export { membersToStart, workersToStartWith } from "./members-to-start.js";
export type { InputShape, ParameterLayout, TensorSlot } from "./parameter-layout.js";
export { initialParameters, parameterLayout, uniform01 } from "./parameter-layout.js";
export type { Range } from "./partition.js";
export { chunkRanges, shardRanges } from "./partition.js";
export type { ResolvedJobSpec } from "./resolve-job-spec.js";
export { resolveJobSpec } from "./resolve-job-spec.js";
export { fisherYates, fmix32, mulberry32, seedFrom, streams } from "./seeded-random.js";
