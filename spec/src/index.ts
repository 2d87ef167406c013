export { checkpointFileVersion, checkpointManifestFileName, latestCheckpointFileName, shardCheckpointFileName } from "./checkpoint-names.js";
export { resolveJobSpec } from "./job-spec.js";
export type { ResolvedJobSpec } from "./job-spec.js";
export { datasetShape, initialParameters, parameterLayout, uniform01 } from "./parameter-layout.js";
export type { InputShape, ParameterLayout, TensorSlot } from "./parameter-layout.js";
export { chunkRanges, shardRanges } from "./partition.js";
export type { Range } from "./partition.js";
