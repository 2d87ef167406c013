/**
 * A parameter-server shard configured directly (no coordinator), so that benchmarks measure
 * the data plane alone; and the credentials of a benchmark's members over mutual TLS.
 */
import { create } from "@bufbuild/protobuf";
import type { TransportSecurity } from "@trainfleet/proto";
import { OptimizerSpecSchema } from "@trainfleet/proto";
import { memberTlsFiles, readTransportSecurity } from "@trainfleet/runtime";
import { shardRanges } from "@trainfleet/spec";
import { tlsFlagNames } from "@trainfleet/testing/fixtures/job-certificates";
import type { ServedShard } from "@trainfleet/testing/shard/shard-harness";
import { serveShard } from "@trainfleet/testing/shard/shard-harness";

export const benchJobId = "bench";

export async function startBenchShard(
  parameterCount: number,
  shardIndex: number,
  shards: number,
  worldSize: number,
  chunkBytes: number,
  security?: TransportSecurity,
): Promise<ServedShard> {
  return serveShard(
    {
      jobId: benchJobId,
      generation: 1,
      worldSize,
      range: shardRanges(parameterCount, shards)[shardIndex]!,
      chunkElements: chunkBytes / 4,
      optimizer: create(OptimizerSpecSchema, { kind: { case: "sgd", value: { learningRate: 0.01, momentum: 0.9 } } }),
      layout: {
        kind: "mlp",
        data: { featureShape: [1], classes: 1, labelSize: 0, trainRecords: 0, evalRecords: 0 },
        input: { height: 1, width: 1, channels: 1, classes: 1, trainSamples: 0, testSamples: 0 },
        tensors: [
          {
            name: "bench",
            shape: [parameterCount],
            offset: 0,
            size: parameterCount,
            fanIn: 0,
            fanOut: 0,
            initializer: "zeros",
            trainable: true,
          },
        ],
        parameterCount,
        trainableCount: parameterCount,
        convKernelSize: 0,
      },
      seed: 1,
    },
    100,
    security,
  );
}

/** The credentials of member `name` from the folder the benchmark made (makeJobCertificates); none for "" (plaintext). */
export async function benchSecurity(tlsDir: string, name: string): Promise<TransportSecurity | undefined> {
  return tlsDir === "" ? undefined : readTransportSecurity(memberTlsFiles(tlsDir, name), tlsFlagNames);
}

/** The peak resident memory of this process so far. */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}
