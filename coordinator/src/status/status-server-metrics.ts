/**
 * The status server's own Prometheus metrics, served after the job's at /metrics: how
 * many event streams are open, refused (over --max-watchers) and dropped (not reading),
 * and how many times a status was serialised, which grows by one per change however many
 * watch it (status-encoder.ts). Read at scrape time from the counters the server keeps.
 */
import type { MetricsSource, Sample } from "@trainfleet/runtime";
import { MetricRegistry } from "@trainfleet/runtime";
import type { StatusEncoder } from "./status-encoder.js";
import type { WatcherLimit } from "./watcher-limit.js";

export function statusServerMetrics(encoder: StatusEncoder, watchers: WatcherLimit): MetricsSource {
  const registry = new MetricRegistry();
  const job = ["job_id"] as const;
  /** One sample labelled with the job, none while the coordinator waits for a job. */
  const level = (value: () => number) => (): Array<Sample<"job_id">> => {
    const jobId = encoder.status().jobId;
    return jobId === "" ? [] : [{ labels: { job_id: jobId }, value: value() }];
  };
  registry.gauge({
    name: "trainfleet_status_watchers",
    help: "Open status event streams (GET /v1/jobs/ID/watch).",
    labelNames: job,
    collect: level(() => watchers.active),
  });
  registry.gauge({
    name: "trainfleet_status_watchers_max",
    help: "How many status event streams may be open at once (--max-watchers).",
    labelNames: job,
    collect: level(() => watchers.max),
  });
  registry.counter({
    name: "trainfleet_status_watchers_refused_total",
    help: "Status event streams refused because --max-watchers were open.",
    labelNames: job,
    collect: level(() => watchers.refused),
  });
  registry.counter({
    name: "trainfleet_status_watchers_dropped_total",
    help: "Status event streams cut because the client stopped taking its events.",
    labelNames: job,
    collect: level(() => watchers.dropped),
  });
  registry.counter({
    name: "trainfleet_status_serialisations_total",
    help: "Times the job's status was serialised to JSON: once per change, however many read it.",
    labelNames: job,
    collect: level(() => encoder.serialisations),
  });
  return registry;
}
