/**
 * @trainfleet/paramserver: a parameter-server shard: state, rank-order aggregation, optimizers, generations, checkpoint slices, and the shard process.
 * It may import proto, spec, kernels, runtime, artifacts and dataplane; other packages import only what is re-exported here, by name.
 */
export { averageInRankOrder } from "./aggregate.js";
export { decodeShardCheckpoint } from "./checkpoint-format.js";
export { modelWeightsSlice } from "./model-weights-slice.js";
export { createOptimizer } from "./optimizer.js";
export { ParameterShard } from "./parameter-shard.js";
export { runShard } from "./run-shard.js";
export { shardMemoryBytes } from "./shard-assignment.js";
export type { ShardConfig } from "./shard-config.js";
