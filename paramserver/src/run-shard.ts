/** A parameter-server shard process: serve gRPC, join the job, follow the coordinator until Stop. */
import { MemberRole, joinJob } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/proto";
import { ParameterShard } from "./parameter-shard.js";
import { shardConfigFrom } from "./shard-config.js";
import { startShardServer } from "./shard-server.js";
import { startDataServer } from "./tcp-data-server.js";

export interface ShardOptions {
  coordinator: string;
  /** host:port to listen on; port 0 picks a free one. */
  listen: string;
  shardIndex: number;
  host: string;
  logger: Logger;
  signal: AbortSignal;
  /** The shard to serve; colocated placement passes one that its worker also reaches in memory. */
  shard?: ParameterShard;
}

export async function runShard(options: ShardOptions): Promise<void> {
  const logger = options.logger.child({ psShard: options.shardIndex });
  const shard = options.shard ?? new ParameterShard();
  const server = await startShardServer(shard, options.listen, logger);
  // The data channel listens on the same host as the gRPC service, on a port of its own.
  const data = await startDataServer(shard, server.address.slice(0, server.address.lastIndexOf(":")), logger);
  logger.info({ address: server.address, dataAddress: data.address }, "parameter-server shard listening");
  try {
    const session = await joinJob({
      coordinator: options.coordinator,
      register: { role: MemberRole.PARAMETER_SERVER, address: server.address, dataAddress: data.address, shardIndex: options.shardIndex, host: options.host },
      logger,
      signal: options.signal,
    });
    try {
      for await (const assignment of session.assignments()) {
        if (assignment.kind.case === "shard") {
          const config = shardConfigFrom(assignment.kind.value);
          shard.configure(config);
          logger.info({ jobId: config.jobId, generation: config.generation, worldSize: config.worldSize, begin: config.range.begin, end: config.range.end }, "shard configured");
        } else if (assignment.kind.case === "stop") {
          logger.info({ reason: assignment.kind.value.reason, version: shard.version, ...shard.stats }, "stopping");
          break;
        }
      }
    } finally {
      session.close();
    }
  } finally {
    await Promise.all([server.close(), data.close()]);
  }
}
