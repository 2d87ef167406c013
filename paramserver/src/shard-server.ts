/** The ParameterServerService over gRPC, backed by one ParameterShard. */
import { Code, ParameterServerService, TrainfleetError, addService, float32Bytes, startServer } from "@trainfleet/proto";
import type { Logger, RunningServer } from "@trainfleet/proto";
import type { ParameterShard } from "./parameter-shard.js";

export async function startShardServer(shard: ParameterShard, listen: string, logger: Logger): Promise<RunningServer> {
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
          const version = await shard.waitForVersion(request.jobId, request.minVersion, signal);
          const begin = shard.config!.range.begin;
          for (const chunk of shard.chunks) {
            // Sync mode cannot move on mid-pull, but a snapshot must never mix versions.
            if (shard.version !== version) {
              throw new TrainfleetError(Code.ABORTED, `version moved from ${version} to ${shard.version} during the pull; pull again`);
            }
            const data = float32Bytes(shard.parameters.subarray(chunk.begin, chunk.end));
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
