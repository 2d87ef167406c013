/**
 * `npm run bench`: the parameter server's push+pull round, over gRPC streams and over the
 * TCP data channel, against a raw TCP echo of the same bytes between Node processes, side
 * by side in one run. For each gradient size, N worker processes push their whole
 * gradient to K shard processes and pull the next version back; the baseline has N client
 * processes echo the same bytes through one server process. Each worker moves 2 x size
 * bytes per round in all three, so MB/s (2 x size / round time) and the ratios compare
 * like with like. Medians over sittings of several rounds each, after a warm-up round.
 */
import { parseArgs } from "node:util";
import { finish, median, message, start } from "./child.js";
import { psSitting, roundsFor } from "./ps-round.js";

const { values } = parseArgs({
  options: {
    workers: { type: "string", default: "2" },
    shards: { type: "string", default: "2" },
    sizes: { type: "string", default: "4,16,64" },
    sittings: { type: "string", default: "5" },
    "chunk-bytes": { type: "string", default: String(1024 * 1024) },
  },
});
const workers = Number(values.workers);
const shards = Number(values.shards);
const sittings = Number(values.sittings);
const chunkBytes = Number(values["chunk-bytes"]);
const sizesMb = values.sizes.split(",").map(Number);
const mb = 1024 * 1024;

async function echoSitting(bytes: number): Promise<number[]> {
  const server = start("./bench-tcp-echo.js", ["server"]);
  const { port } = await message<{ port: number }>(server);
  const rounds = roundsFor(bytes) + 1;
  const clients = Array.from({ length: workers }, () => start("./bench-tcp-echo.js", ["client", port, bytes, rounds]));
  const reports = await Promise.all(clients.map((child) => message<{ times: number[] }>(child)));
  await finish(server);
  return reports[0]!.times.map((_, round) => Math.max(...reports.map((r) => r.times[round]!))).slice(1);
}

const rate = (bytes: number, ms: number) => ((2 * bytes) / mb / (ms / 1000)).toFixed(0);

console.log(
  `trainfleet data plane: ${workers} workers, ${shards} shards, chunks of ${chunkBytes / 1024} KiB, ${sittings} sittings, node ${process.version}`,
);
console.log(
  "| gradient | PS over gRPC | MB/s | PS over TCP channel | MB/s | raw TCP echo | MB/s | TCP channel / echo | gRPC / echo | shard peak RSS | worker peak RSS |",
);
console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const sizeMb of sizesMb) {
  const bytes = sizeMb * mb;
  const medians = { grpc: [] as number[], tcp: [] as number[], echo: [] as number[] };
  let shardRss = 0;
  let workerRss = 0;
  // Interleave the three so that machine noise falls on all alike.
  for (let sitting = 0; sitting < sittings; sitting++) {
    for (const placement of ["grpc", "tcp"] as const) {
      const result = await psSitting({ bytes, workers, shards, placement, chunkBytes, rounds: roundsFor(bytes) });
      medians[placement].push(median(result.times));
      if (placement === "tcp") {
        shardRss = Math.max(shardRss, result.shardRssBytes);
        workerRss = Math.max(workerRss, result.workerRssBytes);
      }
    }
    medians.echo.push(median(await echoSitting(bytes)));
  }
  const [grpc, tcp, echo] = [median(medians.grpc), median(medians.tcp), median(medians.echo)];
  console.log(
    `| ${sizeMb} MiB | ${grpc.toFixed(1)} ms | ${rate(bytes, grpc)} | ${tcp.toFixed(1)} ms | ${rate(bytes, tcp)} | ${echo.toFixed(1)} ms | ${rate(bytes, echo)} | ${(echo / tcp).toFixed(2)}x | ${(echo / grpc).toFixed(2)}x | ${(shardRss / mb).toFixed(0)} MiB | ${(workerRss / mb).toFixed(0)} MiB |`,
  );
}
