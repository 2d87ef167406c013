export { averageInRankOrder } from "./aggregate.js";
export { decodeShardCheckpoint } from "./checkpoint-format.js";
export { createOptimizer } from "./optimizer.js";
export { ParameterShard } from "./parameter-shard.js";
export { runShard } from "./run-shard.js";
export type { ShardConfig } from "./shard-config.js";
