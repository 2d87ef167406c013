/**
 * `npm run bench:all-reduce`: the parameter server as an all-reduce, in the style of
 * nccl-tests, beside torch's gloo all_reduce on the same sizes in the same run. A PS round
 * (every worker pushes its gradient and pulls the result) does what one all_reduce does, and
 * more: it averages and applies the optimizer (SGD with momentum) too. So it is also set beside
 * what a DDP step does with gloo: the all_reduce, the average and torch's SGD step on the same
 * bytes ("gloo+SGD").
 * algbw = bytes / time; busbw = algbw x 2(N-1)/N, the bandwidth a ring would need, which
 * makes different N comparable. Each time: the median of the per-sitting medians, after a
 * warm-up, with their range; each ratio: the median of the per-sitting ratios, with theirs.
 * With --tls, the same rounds in plaintext and over mutual TLS side by side instead
 * (tls-comparison.ts), without gloo.
 */
import { parseArgs } from "node:util";
import { WireDtype } from "@trainfleet/proto";
import { median } from "./child.js";
import { glooAvailable, glooSittings } from "./gloo.js";
import type { Placement } from "./ps-round.js";
import { psSitting, roundsFor } from "./ps-round.js";
import { spread } from "./spread.js";
import { compareTls } from "./tls-comparison.js";

const { values } = parseArgs({
  options: {
    workers: { type: "string", default: "2,4" },
    // Dedicated shard counts over the TCP channel, plus "colocated" (one shard per worker).
    placements: { type: "string", default: "1,2,4,colocated" },
    sizes: { type: "string", default: "1,16,64,256" },
    wire: { type: "string", default: "float32,bfloat16,float16" },
    sittings: { type: "string", default: "5" },
    "chunk-bytes": { type: "string", default: String(1024 * 1024) },
    tls: { type: "boolean", default: false },
  },
});
const mb = 1024 * 1024;
const sittings = Number(values.sittings);
const chunkBytes = Number(values["chunk-bytes"]);
const sizes = values.sizes.split(",").map((s) => Number(s) * mb);
const placements = values.placements.split(",");
const wireDtypes = { float32: WireDtype.FLOAT32, bfloat16: WireDtype.BFLOAT16, float16: WireDtype.FLOAT16 } as const;
const wires = values.wire.split(",") as Array<keyof typeof wireDtypes>;

if (values.tls) {
  await compareTls({
    workers: values.workers.split(",").map(Number),
    sizes,
    placements,
    wires: wires.map((w) => [w, wireDtypes[w]] as const),
    sittings,
    chunkBytes,
  });
  process.exit(0);
}

const gloo = glooAvailable();
console.log(
  `trainfleet all-reduce: ${sittings} sittings, chunks of ${chunkBytes / 1024} KiB, node ${process.version}; ${gloo.ok ? `torch ${gloo.version} gloo` : `gloo: ${gloo.why}`}`,
);
console.log(
  "| N | size | placement | wire | time | algbw GB/s | busbw GB/s | gloo time | gloo busbw GB/s | PS / gloo | gloo+SGD time | PS / gloo+SGD | shard peak RSS | worker peak RSS |",
);
console.log("|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const workers of values.workers.split(",").map(Number)) {
  const rounds = sizes.map(roundsFor);
  const none = new Map<number, number[]>();
  const glooTimes = gloo.ok ? await glooSittings(workers, sizes, sittings, rounds) : none;
  const ddpTimes = gloo.ok ? await glooSittings(workers, sizes, sittings, rounds, "sgd-momentum") : none;
  const busFactor = (2 * (workers - 1)) / workers;
  for (const bytes of sizes) {
    const glooMs = glooTimes.get(bytes);
    const ddpMs = ddpTimes.get(bytes);
    for (const [placement, wire] of placements.flatMap((p) => wires.map((w) => [p, w] as const))) {
      const colocated = placement === "colocated";
      const shards = colocated ? workers : Number(placement);
      const times: number[] = [];
      let shardRss = 0;
      let workerRss = 0;
      for (let sitting = 0; sitting < sittings; sitting++) {
        const result = await psSitting({
          bytes,
          workers,
          shards,
          placement: (colocated ? "colocated" : "tcp") satisfies Placement,
          chunkBytes,
          rounds: roundsFor(bytes),
          wireDtype: wireDtypes[wire],
        });
        times.push(median(result.times));
        shardRss = Math.max(shardRss, result.shardRssBytes);
        workerRss = Math.max(workerRss, result.workerRssBytes);
      }
      const ms = median(times);
      const algbw = bytes / (ms / 1000) / 1e9;
      // Each cell: the median of the sittings' medians (min-max); a ratio pairs sitting i of each side.
      const ratios = (baseline: number[]) =>
        spread(
          times.map((t, i) => baseline[i]! / t),
          "x",
          2,
        );
      const glooCells =
        glooMs === undefined
          ? "- | - | -"
          : `${spread(glooMs, " ms")} | ${((bytes / (median(glooMs) / 1000) / 1e9) * busFactor).toFixed(2)} | ${ratios(glooMs)}`;
      const ddpCells = ddpMs === undefined ? "- | -" : `${spread(ddpMs, " ms")} | ${ratios(ddpMs)}`;
      const label = colocated ? "colocated" : `${shards} dedicated`;
      console.log(
        `| ${workers} | ${bytes / mb} MiB | ${label} | ${wire} | ${spread(times, " ms")} | ${algbw.toFixed(2)} | ${(algbw * busFactor).toFixed(2)} | ${glooCells} | ${ddpCells} | ${colocated ? "(in worker)" : `${(shardRss / mb).toFixed(0)} MiB`} | ${(workerRss / mb).toFixed(0)} MiB |`,
      );
    }
  }
}
