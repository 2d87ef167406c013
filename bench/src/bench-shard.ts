/**
 * Benchmark child: one parameter-server shard configured directly (no coordinator), so
 * that the data plane is measured alone. argv: parameterCount shardIndex shards worldSize chunkBytes.
 */
import { create } from "@bufbuild/protobuf";
import { OptimizerSpecSchema, shardRanges, silentLogger } from "@trainfleet/proto";
import type { ParameterLayout } from "@trainfleet/proto";
import { ParameterShard, startShardServer } from "@trainfleet/paramserver";

const [parameterCount, shardIndex, shards, worldSize, chunkBytes] = process.argv.slice(2).map(Number) as [number, number, number, number, number];
const layout: ParameterLayout = {
  kind: "mlp",
  input: { height: 1, width: 1, channels: 1, classes: 1, trainSamples: 0, testSamples: 0 },
  tensors: [{ name: "bench", shape: [parameterCount], offset: 0, size: parameterCount, fanIn: 0, fanOut: 0 }],
  parameterCount,
  convKernelSize: 0,
};
const shard = new ParameterShard();
shard.configure({
  jobId: "bench",
  generation: 1,
  worldSize,
  range: shardRanges(parameterCount, shards)[shardIndex]!,
  chunkElements: chunkBytes / 4,
  optimizer: create(OptimizerSpecSchema, { kind: { case: "sgd", value: { learningRate: 0.01, momentum: 0.9 } } }),
  layout,
  seed: 1,
});
const server = await startShardServer(shard, "127.0.0.1:0", silentLogger);
process.send!({ address: server.address });
process.on("message", () => {
  process.send!({ rssBytes: process.resourceUsage().maxRSS * 1024 }, () => void server.close(100).then(() => process.exit(0)));
});
