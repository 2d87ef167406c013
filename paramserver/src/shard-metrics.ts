/**
 * A parameter-server shard's Prometheus metrics and the counters its heartbeat carries to
 * the coordinator. Both read the shard's own ShardStats and version at the moment they
 * are asked, so nothing is counted twice. Series are labelled with the job (`job_id`, see
 * coordinator-metrics.ts for why not `job`) and the shard index; there are none until the
 * coordinator has assigned the shard its job.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ParameterServerStatsSchema } from "@trainfleet/proto";
import type { Sample } from "@trainfleet/runtime";
import { MetricRegistry } from "@trainfleet/runtime";
import type { ParameterShard } from "./parameter-shard.js";

type ShardLabel = "job_id" | "shard";

export function shardMetrics(shard: ParameterShard, shardIndex: number): MetricRegistry {
  const registry = new MetricRegistry();
  const labelNames = ["job_id", "shard"] as const;
  const read = (value: () => number) => (): Array<Sample<ShardLabel>> => {
    const config = shard.config;
    return config === undefined ? [] : [{ labels: { job_id: config.jobId, shard: String(shardIndex) }, value: value() }];
  };
  registry.counter({
    name: "trainfleet_ps_pushed_bytes_total",
    help: "Gradient bytes workers pushed to this shard.",
    labelNames,
    collect: read(() => shard.stats.bytesIn),
  });
  registry.counter({
    name: "trainfleet_ps_pulled_bytes_total",
    help: "Parameter bytes workers pulled from this shard.",
    labelNames,
    collect: read(() => shard.stats.bytesOut),
  });
  registry.counter({
    name: "trainfleet_ps_aggregation_seconds_total",
    help: "Time spent summing gradients in rank order and applying the optimizer.",
    labelNames,
    collect: read(() => shard.stats.aggregationMs / 1000),
  });
  registry.counter({
    name: "trainfleet_ps_updates_total",
    help: "Optimizer updates applied: the shard's parameter version.",
    labelNames,
    collect: read(() => shard.version),
  });
  registry.gauge({
    name: "trainfleet_ps_parameters",
    help: "Parameters this shard owns.",
    labelNames,
    collect: read(() => shard.config!.range.end - shard.config!.range.begin),
  });
  return registry;
}

/** What the shard's heartbeat tells the coordinator (JobStatus.parameter_servers, and who the step in progress waits for). */
export function shardHeartbeatStats(shard: ParameterShard): MessageInitShape<typeof ParameterServerStatsSchema> {
  return {
    bytesIn: BigInt(Math.round(shard.stats.bytesIn)),
    bytesOut: BigInt(Math.round(shard.stats.bytesOut)),
    aggregationMs: shard.stats.aggregationMs,
    version: shard.version,
    generation: shard.generation,
    missedDeadlines: shard.missedDeadlines(),
  };
}
