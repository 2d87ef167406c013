/**
 * `npm run bench:all-reduce -- --tls`: the cost of mutual TLS on the data plane. The same PS
 * rounds as the all-reduce table, each configuration in plaintext and over mutual TLS 1.3
 * (every worker and shard with its own certificate of one job CA, as a real job has them),
 * sittings interleaved (plaintext first in even sittings, TLS first in odd ones) so that
 * machine noise falls on both alike. Printed: the median of the sittings' medians with their
 * range, and the ratio TLS / plaintext (median of the per-sitting ratios, with their range).
 */
import { makeJobCertificates } from "@trainfleet/testing/fixtures/job-certificates";
import { benchJobId } from "./bench-shard-setup.js";
import { median } from "./child.js";
import type { Placement } from "./ps-round.js";
import { psSitting, roundsFor } from "./ps-round.js";

export interface TlsComparison {
  workers: readonly number[];
  sizes: readonly number[];
  /** Dedicated shard counts, or "colocated". */
  placements: readonly string[];
  wires: ReadonlyArray<readonly [name: string, dtype: number]>;
  sittings: number;
  chunkBytes: number;
}

const mb = 1024 * 1024;

export async function compareTls(options: TlsComparison): Promise<void> {
  const most = Math.max(...options.workers, ...options.placements.filter((p) => p !== "colocated").map(Number));
  const names = Array.from({ length: most }, (_, i) => i);
  const certificates = await makeJobCertificates(benchJobId, [
    ...names.map((i) => ["parameter-server", `ps-${i}`] as const),
    ...names.map((i) => ["worker", `worker-${i}`] as const),
  ]);
  try {
    console.log(
      `trainfleet data plane, plaintext vs mutual TLS 1.3: ${options.sittings} sittings, chunks of ${options.chunkBytes / 1024} KiB, node ${process.version}`,
    );
    console.log(
      "| N | size | placement | wire | plaintext, median (range) | TLS, median (range) | TLS / plaintext, median (range) | plaintext busbw GB/s | TLS busbw GB/s | worker peak RSS plaintext / TLS |",
    );
    console.log("|---:|---:|---|---|---:|---:|---:|---:|---:|---:|");
    for (const workers of options.workers) {
      const busFactor = (2 * (workers - 1)) / workers;
      for (const bytes of options.sizes)
        for (const placement of options.placements)
          for (const [wire, wireDtype] of options.wires) {
            const colocated = placement === "colocated";
            const times = { plain: [] as number[], tls: [] as number[] };
            const rss = { plain: 0, tls: 0 };
            for (let sitting = 0; sitting < options.sittings; sitting++) {
              const order = sitting % 2 === 0 ? (["plain", "tls"] as const) : (["tls", "plain"] as const);
              for (const mode of order) {
                const result = await psSitting({
                  bytes,
                  workers,
                  shards: colocated ? workers : Number(placement),
                  placement: (colocated ? "colocated" : "tcp") satisfies Placement,
                  chunkBytes: options.chunkBytes,
                  rounds: roundsFor(bytes),
                  wireDtype,
                  tlsDir: mode === "tls" ? certificates.dir : undefined,
                });
                times[mode].push(median(result.times));
                rss[mode] = Math.max(rss[mode], result.workerRssBytes);
              }
            }
            const ratios = times.tls.map((t, i) => t / times.plain[i]!);
            const busbw = (ms: number) => ((bytes / (ms / 1000) / 1e9) * busFactor).toFixed(2);
            const label = colocated ? "colocated" : `${placement} dedicated`;
            console.log(
              `| ${workers} | ${bytes / mb} MiB | ${label} | ${wire} | ${spread(times.plain, " ms")} | ${spread(times.tls, " ms")} | ${spread(ratios, "x", 2)} | ${busbw(median(times.plain))} | ${busbw(median(times.tls))} | ${(rss.plain / mb).toFixed(0)} / ${(rss.tls / mb).toFixed(0)} MiB |`,
            );
          }
    }
  } finally {
    await certificates.close();
  }
}

/** "median unit (min-max)". */
function spread(values: readonly number[], unit: string, digits = 1): string {
  const at = (v: number) => v.toFixed(digits);
  return `${at(median([...values]))}${unit} (${at(Math.min(...values))}-${at(Math.max(...values))})`;
}
