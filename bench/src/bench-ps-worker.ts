/**
 * Benchmark child: one worker's data plane only. Each round pushes a whole gradient to
 * every shard and pulls the next version back; the shards' barrier keeps the workers in
 * step. argv: parameterCount rank rounds chunkBytes address0,address1,...
 */
import { createParameterClient, shardRanges } from "@trainfleet/proto";

const [count, rank, rounds, chunkBytes] = process.argv.slice(2, 6).map(Number) as [number, number, number, number];
const addresses = process.argv[6]!.split(",");
const ranges = shardRanges(count, addresses.length);
const client = createParameterClient("bench", addresses.map((address, index) => ({ index, address, ...ranges[index]! })), chunkBytes);
const gradient = new Float32Array(count).fill(1e-3);
const parameters = new Float32Array(count);
await client.pull(0, parameters);
const times: number[] = [];
for (let step = 0; step < rounds; step++) {
  const started = performance.now();
  await client.push({ generation: 1, step, rank }, gradient);
  await client.pull(step + 1, parameters);
  times.push(performance.now() - started);
}
client.close();
process.send!({ times, rssBytes: process.resourceUsage().maxRSS * 1024 }, () => process.disconnect());
