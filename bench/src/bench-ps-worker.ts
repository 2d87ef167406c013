/**
 * Benchmark child: one worker's data plane only. Each round pushes a whole gradient to
 * every shard and pulls the next version back; the shards' barrier keeps the workers in
 * step. With `colocated`, this process also hosts shard `rank` and reaches it through
 * memory. argv: parameterCount rank rounds chunkBytes plane(grpc|tcp|colocated) worldSize wireDtype
 * [tlsDir] (mutual TLS as worker-{rank}, and its colocated shard as ps-{rank}, with the
 * credentials there; plaintext when absent or "").
 * IPC: sends {dataAddress?}, receives {shards}, sends {times, rssBytes}, receives "stop".
 */
import { once } from "node:events";
import type { ShardEndpoint } from "@trainfleet/dataplane";
import { createLocalShardLink, createParameterClient } from "@trainfleet/dataplane";
import { kernelFloat32Array } from "@trainfleet/kernels";
import { DataPlane } from "@trainfleet/proto";
import { benchJobId, benchSecurity, peakRssBytes, startBenchShard } from "./bench-shard-setup.js";

const [count, rank, rounds, chunkBytes] = process.argv.slice(2, 6).map(Number) as [number, number, number, number];
const plane = process.argv[6] as "grpc" | "tcp" | "colocated";
const worldSize = Number(process.argv[7]);
const wireDtype = Number(process.argv[8]);
const tlsDir = process.argv[9] ?? "";

const security = await benchSecurity(tlsDir, `worker-${rank}`);
const own =
  plane === "colocated"
    ? await startBenchShard(count, rank, worldSize, worldSize, chunkBytes, await benchSecurity(tlsDir, `ps-${rank}`))
    : undefined;
process.send!({ dataAddress: own?.data.address });
const [{ shards }] = (await once(process, "message")) as [{ shards: ShardEndpoint[] }];
const local = new Map(own === undefined ? [] : [[rank, createLocalShardLink(own.shard, benchJobId)]]);
const client = createParameterClient({
  jobId: benchJobId,
  shards,
  chunkBytes,
  dataPlane: plane === "grpc" ? DataPlane.GRPC : DataPlane.TCP,
  local,
  wireDtype,
  security,
});
// Where a trainer keeps them: in the kernel memory.
const gradient = kernelFloat32Array(count).fill(1e-3);
const parameters = kernelFloat32Array(count);
await client.pull(0, parameters);
const times: number[] = [];
for (let step = 0; step < rounds; step++) {
  const started = performance.now();
  await client.pushThenPull({ generation: 1, step, rank }, gradient, parameters);
  times.push(performance.now() - started);
}
process.send!({ times, rssBytes: peakRssBytes() });
// A colocated shard serves the other workers until every one of them is done.
await once(process, "message");
client.close();
await own?.close();
process.disconnect();
