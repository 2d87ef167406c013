/** The ParameterServerService over gRPC (the fallback data plane), backed by one shard through its port. */

import type { RunningServer } from "@trainfleet/proto";
import { addService, ParameterServerService, startServer, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { float32Bytes } from "./codec/tensor-codec.js";
import type { ShardPort } from "./shard-port.js";

export async function startShardServer(shard: ShardPort, listen: string, logger: Logger): Promise<RunningServer> {
  return startServer(listen, (server, serverSignal) =>
    addService(
      server,
      ParameterServerService,
      {
        async push(requests) {
          const transaction = shard.beginPush();
          try {
            for await (const request of requests) transaction.add(request);
          } catch (error) {
            transaction.abort();
            const failure = TrainfleetError.from(error);
            logger.warn({ code: failure.code, field: failure.field, err: failure.message }, "push rejected");
            throw failure;
          }
          return transaction.commit();
        },
        async *pull(request, { signal }) {
          const served = await shard.waitForVersion(request.jobId, request.minVersion, signal);
          const { version } = served;
          const begin = shard.config!.range.begin;
          for (const chunk of shard.chunks) {
            // Sync mode cannot move on mid-pull (async reads a copy), but a snapshot must never
            // mix versions, and a new generation (which may take this version back) ends the pull.
            shard.checkServing(served);
            const data = float32Bytes(served.values.subarray(chunk.begin, chunk.end));
            shard.stats.bytesOut += data.byteLength;
            // The message is serialised (copied) when it is written, before the next await.
            yield { version, offset: BigInt(begin + chunk.begin), data };
          }
        },
      },
      serverSignal,
    ),
  );
}
