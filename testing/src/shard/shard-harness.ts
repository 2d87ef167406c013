/**
 * A real parameter-server shard on 127.0.0.1 (its gRPC service and its TCP data channel,
 * on free ports), configured and opened directly as the coordinator would, with a real
 * gRPC client: for tests of the shard's contract. `serveShard` is the same without the client,
 * for any config (benchmarks). Given the shard's credentials, both servers are mutual TLS;
 * the harness's client then needs its own (a worker's, to push).
 */
import { create } from "@bufbuild/protobuf";
import type { DataServer } from "@trainfleet/dataplane";
import { startDataServer, startShardServer } from "@trainfleet/dataplane";
import type { ShardConfig } from "@trainfleet/paramserver";
import { ParameterShard } from "@trainfleet/paramserver";
import type { ClientOf, RunningServer, TransportSecurity } from "@trainfleet/proto";
import { createClient, DatasetSpecSchema, ModelSpecSchema, OptimizerSpecSchema, ParameterServerService } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { silentLogger } from "@trainfleet/runtime";
import { dataShape, parameterLayout } from "@trainfleet/spec";

/** A shard with its two servers: its gRPC service and its TCP data channel. */
export interface ServedShard {
  shard: ParameterShard;
  server: RunningServer;
  data: DataServer;
  close(): Promise<void>;
}

export interface ShardHarness extends ServedShard {
  client: ClientOf<typeof ParameterServerService>;
  config: ShardConfig;
}

/**
 * A shard configured with `config` and opened at its generation, serving on 127.0.0.1 (free
 * ports), over mutual TLS with `security` (the shard's, ps-{index}) when given; `close` gives
 * open calls `closeGraceMs` to finish. Benchmarks use it to measure the data plane alone.
 */
export async function serveShard(
  config: ShardConfig,
  closeGraceMs = 1_000,
  security?: TransportSecurity,
  logger: Logger = silentLogger,
): Promise<ServedShard> {
  const shard = new ParameterShard();
  shard.configure(config);
  shard.openGeneration(config.generation, 0);
  const server = await startShardServer(shard, "127.0.0.1:0", logger, security);
  const data = await startDataServer(shard, "127.0.0.1", logger, security);
  return { shard, server, data, close: async () => void (await Promise.all([server.close(closeGraceMs), data.close()])) };
}

export interface HarnessSecurity {
  /** The shard's credentials (parameter-server ps-N of the config's job). */
  shard: TransportSecurity;
  /** The harness client's (a worker's, to push); it expects the shard to be `shardName`. */
  client: TransportSecurity;
  /** Whom the client expects the shard to be (default ps-0). */
  shardName?: string;
  /** Where the shard's servers log (refusals); silent by default. */
  logger?: Logger;
}

export async function startShardHarness(overrides: Partial<ShardConfig> = {}, security?: HarnessSecurity): Promise<ShardHarness> {
  const layout = parameterLayout(
    create(ModelSpecSchema, { kind: { case: "mlp", value: { hiddenUnits: [4] } } }),
    dataShape(create(DatasetSpecSchema, { name: "fashion-mnist" })),
  );
  const config: ShardConfig = {
    jobId: "job-a",
    generation: 1,
    worldSize: 2,
    range: { begin: 1000, end: 2000 },
    chunkElements: 256,
    optimizer: create(OptimizerSpecSchema, { kind: { case: "sgd", value: { learningRate: 0.1, momentum: 0.9 } } }),
    layout,
    seed: 3,
    ...overrides,
  };
  const served = await serveShard(config, 1_000, security?.shard, security?.logger);
  const client = createClient(
    ParameterServerService,
    served.server.address,
    security === undefined
      ? undefined
      : { security: security.client, server: { roles: ["parameter-server"], name: security.shardName ?? "ps-0" } },
  );
  return {
    ...served,
    client,
    config,
    async close() {
      client.close();
      await served.close();
    },
  };
}

/** The push messages of a whole gradient for the harness shard's range, in chunks. */
export function gradientChunks(
  config: ShardConfig,
  tag: { step: number; rank: number; generation?: number; jobId?: string },
  fill: (i: number) => number,
) {
  const messages = [];
  for (let begin = config.range.begin; begin < config.range.end; begin += config.chunkElements) {
    const end = Math.min(config.range.end, begin + config.chunkElements);
    const values = Float32Array.from({ length: end - begin }, (_, i) => fill(begin + i));
    messages.push({
      jobId: tag.jobId ?? config.jobId,
      generation: tag.generation ?? config.generation,
      step: tag.step,
      rank: tag.rank,
      offset: BigInt(begin),
      data: new Uint8Array(values.buffer),
    });
  }
  return messages;
}
