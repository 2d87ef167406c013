/**
 * `npm run bench`: the parameter server's push+pull round against a raw TCP echo of the
 * same bytes between Node processes, side by side in one run. For each gradient size,
 * N worker processes push their whole gradient to K shard processes and pull the next
 * version back; the baseline has N client processes echo the same bytes through one
 * server process. Each worker moves 2 x size bytes per round in both, so MB/s (2 x size /
 * round time) and the ratio compare like with like. Medians over sittings of several
 * rounds each, after a warm-up round.
 */
import { parseArgs } from "node:util";
import { finish, median, message, start } from "./child.js";

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

function roundsFor(bytes: number): number {
  return Math.max(3, Math.min(20, Math.round((64 * mb) / bytes)));
}

/** One sitting of PS rounds; returns the per-round time (slowest worker) of each measured round. */
async function psSitting(bytes: number): Promise<{ times: number[]; shardRss: number; workerRss: number }> {
  const count = bytes / 4;
  const shardProcesses = Array.from({ length: shards }, (_, index) => start("./bench-shard.js", [count, index, shards, workers, chunkBytes]));
  const addresses = (await Promise.all(shardProcesses.map((child) => message<{ address: string }>(child)))).map((m) => m.address);
  const rounds = roundsFor(bytes) + 1;
  const workerProcesses = Array.from({ length: workers }, (_, rank) => start("./bench-ps-worker.js", [count, rank, rounds, chunkBytes, addresses.join(",")]));
  const reports = await Promise.all(workerProcesses.map((child) => message<{ times: number[]; rssBytes: number }>(child)));
  const shardReports = await Promise.all(shardProcesses.map((child) => finish<{ rssBytes: number }>(child)));
  const times = reports[0]!.times.map((_, round) => Math.max(...reports.map((r) => r.times[round]!))).slice(1);
  return {
    times,
    shardRss: Math.max(...shardReports.map((r) => r.rssBytes)),
    workerRss: Math.max(...reports.map((r) => r.rssBytes)),
  };
}

async function tcpSitting(bytes: number): Promise<number[]> {
  const server = start("./bench-tcp-echo.js", ["server"]);
  const { port } = await message<{ port: number }>(server);
  const rounds = roundsFor(bytes) + 1;
  const clients = Array.from({ length: workers }, () => start("./bench-tcp-echo.js", ["client", port, bytes, rounds]));
  const reports = await Promise.all(clients.map((child) => message<{ times: number[] }>(child)));
  await finish(server);
  return reports[0]!.times.map((_, round) => Math.max(...reports.map((r) => r.times[round]!))).slice(1);
}

const rate = (bytes: number, ms: number) => (2 * bytes) / mb / (ms / 1000);

console.log(`trainfleet data plane: ${workers} workers, ${shards} shards, chunks of ${chunkBytes / 1024} KiB, ${sittings} sittings, node ${process.version}`);
console.log("| gradient | PS push+pull round | PS MB/s | raw TCP echo round | TCP MB/s | PS / TCP | shard peak RSS | worker peak RSS |");
console.log("|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const sizeMb of sizesMb) {
  const bytes = sizeMb * mb;
  const ps: number[] = [];
  const tcp: number[] = [];
  let shardRss = 0;
  let workerRss = 0;
  // Alternate the two so that machine noise falls on both alike.
  for (let sitting = 0; sitting < sittings; sitting++) {
    const result = await psSitting(bytes);
    ps.push(median(result.times));
    shardRss = Math.max(shardRss, result.shardRss);
    workerRss = Math.max(workerRss, result.workerRss);
    tcp.push(median(await tcpSitting(bytes)));
  }
  const psMs = median(ps);
  const tcpMs = median(tcp);
  console.log(
    `| ${sizeMb} MiB | ${psMs.toFixed(1)} ms | ${rate(bytes, psMs).toFixed(0)} | ${tcpMs.toFixed(1)} ms | ${rate(bytes, tcpMs).toFixed(0)} | ${(tcpMs / psMs).toFixed(2)}x | ${(shardRss / mb).toFixed(0)} MiB | ${(workerRss / mb).toFixed(0)} MiB |`,
  );
}
