export * from "./aggregate.js";
export * from "./optimizer.js";
export * from "./parameter-shard.js";
export * from "./shard-config.js";
export * from "./shard-server.js";
export * from "./run-shard.js";
export * from "./tcp-data-server.js";
export * from "./local-shard-link.js";
