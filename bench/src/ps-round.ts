/**
 * One sitting of parameter-server rounds with real processes: N workers push a whole
 * gradient and pull the next version, through K dedicated shard processes or through
 * shards colocated in the workers. Returns each measured round's time (the slowest
 * worker's; the first round is a warm-up and dropped) and the peak RSS seen.
 */
import { once } from "node:events";
import type { ShardEndpoint } from "@trainfleet/dataplane";
import { WireDtype } from "@trainfleet/proto";
import { shardRanges } from "@trainfleet/spec";
import { finish, message, start } from "./child.js";

export type Placement = "grpc" | "tcp" | "colocated";

/** Enough rounds for a steady median (at least 5), few enough for 256 MiB to finish. */
export function roundsFor(bytes: number): number {
  return Math.max(5, Math.min(20, Math.round((128 * 1024 * 1024) / bytes)));
}

/**
 * Untimed rounds first: connections, and the first touch of every page. A shard's step
 * results and optimizer state are double-buffered, so each buffer is first written in one
 * of the first two rounds (a first touch costs a page fault, several microseconds a page).
 */
const warmUpRounds = 2;

export interface PsSitting {
  bytes: number;
  workers: number;
  /** Dedicated shards; colocated placement has one per worker. */
  shards: number;
  placement: Placement;
  chunkBytes: number;
  rounds: number;
  /** A WireDtype (TCP channel only); float32 when absent. */
  wireDtype?: number;
  /** Mutual TLS with the credentials in this folder (makeJobCertificates for benchJobId: ps-i, worker-i); plaintext when absent. */
  tlsDir?: string | undefined;
}

export interface PsSittingResult {
  times: number[];
  shardRssBytes: number;
  workerRssBytes: number;
}

export async function psSitting(config: PsSitting): Promise<PsSittingResult> {
  const count = config.bytes / 4;
  const colocated = config.placement === "colocated";
  const shardCount = colocated ? config.workers : config.shards;
  const shardProcesses = colocated
    ? []
    : Array.from({ length: shardCount }, (_, index) =>
        start("./bench-shard.js", [count, index, shardCount, config.workers, config.chunkBytes, config.tlsDir ?? ""]),
      );
  const shardAddresses = await Promise.all(shardProcesses.map((child) => message<{ address: string; dataAddress: string }>(child)));
  const workers = Array.from({ length: config.workers }, (_, rank) =>
    start("./bench-ps-worker.js", [
      count,
      rank,
      config.rounds + warmUpRounds,
      config.chunkBytes,
      config.placement,
      config.workers,
      config.wireDtype ?? WireDtype.FLOAT32,
      config.tlsDir ?? "",
    ]),
  );
  const workerAddresses = await Promise.all(workers.map((child) => message<{ dataAddress?: string }>(child)));
  const ranges = shardRanges(count, shardCount);
  const shards: ShardEndpoint[] = ranges.map((range, index) => ({
    index,
    ...range,
    address: shardAddresses[index]?.address ?? "",
    dataAddress: colocated ? workerAddresses[index]!.dataAddress : shardAddresses[index]!.dataAddress,
  }));
  const results = workers.map((child) => message<{ times: number[]; rssBytes: number }>(child));
  for (const child of workers) child.send({ shards });
  const reports = await Promise.all(results);
  for (const child of workers) child.send("stop");
  await Promise.all(workers.map((child) => (child.exitCode === null ? once(child, "exit") : undefined)));
  const shardReports = await Promise.all(shardProcesses.map((child) => finish<{ rssBytes: number }>(child)));
  return {
    times: reports[0]!.times.map((_, round) => Math.max(...reports.map((r) => r.times[round]!))).slice(warmUpRounds),
    shardRssBytes: Math.max(0, ...shardReports.map((r) => r.rssBytes)),
    workerRssBytes: Math.max(...reports.map((r) => r.rssBytes)),
  };
}
