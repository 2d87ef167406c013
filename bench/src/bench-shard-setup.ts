/** A parameter-server shard configured directly (no coordinator), so that benchmarks measure the data plane alone. */
import { create } from "@bufbuild/protobuf";
import { OptimizerSpecSchema } from "@trainfleet/proto";
import { shardRanges } from "@trainfleet/spec";
import { silentLogger } from "@trainfleet/runtime";
import type { ParameterLayout } from "@trainfleet/spec";
import type { RunningServer } from "@trainfleet/proto";
import { ParameterShard } from "@trainfleet/paramserver";
import { startDataServer, startShardServer } from "@trainfleet/dataplane";
import type { DataServer } from "@trainfleet/dataplane";

export const benchJobId = "bench";

export interface BenchShard {
  shard: ParameterShard;
  server: RunningServer;
  data: DataServer;
  close(): Promise<void>;
}

export async function startBenchShard(parameterCount: number, shardIndex: number, shards: number, worldSize: number, chunkBytes: number): Promise<BenchShard> {
  const layout: ParameterLayout = {
    kind: "mlp",
    input: { height: 1, width: 1, channels: 1, classes: 1, trainSamples: 0, testSamples: 0 },
    tensors: [{ name: "bench", shape: [parameterCount], offset: 0, size: parameterCount, fanIn: 0, fanOut: 0 }],
    parameterCount,
    convKernelSize: 0,
  };
  const shard = new ParameterShard();
  shard.configure({
    jobId: benchJobId,
    generation: 1,
    worldSize,
    range: shardRanges(parameterCount, shards)[shardIndex]!,
    chunkElements: chunkBytes / 4,
    optimizer: create(OptimizerSpecSchema, { kind: { case: "sgd", value: { learningRate: 0.01, momentum: 0.9 } } }),
    layout,
    seed: 1,
  });
  shard.openGeneration(1, 0);
  const server = await startShardServer(shard, "127.0.0.1:0", silentLogger);
  const data = await startDataServer(shard, "127.0.0.1", silentLogger);
  return { shard, server, data, close: async () => void (await Promise.all([server.close(100), data.close()])) };
}

/** The peak resident memory of this process so far. */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}
