/**
 * The ParameterServerService over gRPC (the fallback data plane), backed by one shard through
 * its port. With the job's credentials it is mutual TLS, and each call's certificate must
 * allow it (data-plane-access.ts): a push only from a worker, a pull from a worker or the
 * coordinator; anyone else is refused PERMISSION_DENIED before the shard is touched.
 */

import type { PeerIdentity, RunningServer, TransportSecurity } from "@trainfleet/proto";
import { addService, ParameterServerService, startServer, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";
import { float32Bytes } from "./codec/tensor-codec.js";
import { dataPlaneRefusal } from "./data-plane-access.js";
import type { ShardPort } from "./shard-port.js";

export async function startShardServer(
  shard: ShardPort,
  listen: string,
  logger: Logger,
  security?: TransportSecurity,
): Promise<RunningServer> {
  /** Throws PERMISSION_DENIED when the caller may not `action` (over mutual TLS; plaintext checks nothing). */
  const allow = (context: { peer: string; identity: PeerIdentity | undefined }, action: "push" | "pull") => {
    if (security === undefined) return;
    const refused = dataPlaneRefusal(context.identity, security.identity.jobId, action);
    if (refused === undefined) return;
    logger.warn({ peer: context.peer, err: refused.message }, `${action} refused`);
    throw refused;
  };
  return startServer(
    listen,
    (server, serverSignal) =>
      addService(
        server,
        ParameterServerService,
        {
          async push(requests, context) {
            allow(context, "push");
            const transaction = shard.beginPush(context.identity);
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
          async *pull(request, context) {
            allow(context, "pull");
            const served = await shard.waitForVersion(request.jobId, request.minVersion, context.signal);
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
    security,
  );
}
