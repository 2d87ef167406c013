/**
 * The operator's Prometheus metrics (served at /metrics by operator-health.ts), on the registry
 * the coordinator and the shards use. Reconciles are counted as they end; levels (the work
 * queue, the jobs by phase, whether this replica leads, the leader changes it has seen) are
 * read at scrape time from what the operator already keeps.
 *
 * Every replica reports the jobs in its own cache, the standby too: aggregate them with `max`,
 * or select the leader with `trainfleet_operator_leader == 1`.
 */
import type { Counter, Histogram, Sample } from "@trainfleet/runtime";
import { MetricRegistry } from "@trainfleet/runtime";

export type ReconcileResult = "success" | "error";

/** Reconciles take milliseconds against a nearby API server, seconds when it or a coordinator is slow. */
export const reconcileDurationBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

/** A job's status.phase; "New" before the operator first wrote its status. Always reported, so a phase with no job reads 0. */
export const jobPhases = ["New", "Created", "Admitted", "Running", "Rescaling", "Restarting", "Suspended", "Succeeded", "Failed"] as const;

/** What the metrics read at scrape time. */
export interface OperatorState {
  queueDepth(): number;
  /** The phase of every job in the cache ("" or undefined: not written yet). */
  jobPhases(): Iterable<string | undefined>;
  leading(): boolean;
  leaderTransitions(): number;
}

export class OperatorMetrics {
  readonly #registry = new MetricRegistry();
  readonly #reconciles: Counter<"result">;
  readonly #errors: Counter;
  readonly #duration: Histogram;

  constructor(state: OperatorState) {
    const r = this.#registry;
    this.#reconciles = r.counter({
      name: "trainfleet_operator_reconciles_total",
      help: "TrainingJob reconciles, by result (error: retried after a backoff).",
      labelNames: ["result"],
    });
    this.#errors = r.counter({ name: "trainfleet_operator_reconcile_errors_total", help: "TrainingJob reconciles that failed." });
    this.#duration = r.histogram({
      name: "trainfleet_operator_reconcile_duration_seconds",
      help: "How long one TrainingJob reconcile took, calls to the API server and the coordinator included.",
      buckets: reconcileDurationBuckets,
    });
    r.gauge({
      name: "trainfleet_operator_work_queue_depth",
      help: "TrainingJobs waiting to be reconciled (not counting those waiting for a requeue or retry delay).",
      collect: () => [{ labels: {}, value: state.queueDepth() }],
    });
    r.gauge({
      name: "trainfleet_operator_training_jobs",
      help: "TrainingJobs in this replica's cache, by status.phase (New: no status written yet).",
      labelNames: ["phase"],
      collect: () => countPhases(state.jobPhases()),
    });
    r.gauge({
      name: "trainfleet_operator_leader",
      help: "1 while this replica holds the leader Lease (or runs without leader election), else 0.",
      collect: () => [{ labels: {}, value: state.leading() ? 1 : 0 }],
    });
    r.counter({
      name: "trainfleet_operator_leader_transitions_total",
      help: "Changes of the leader Lease's holder this replica has seen.",
      collect: () => [{ labels: {}, value: state.leaderTransitions() }],
    });
    // Series that exist before the first reconcile, so that rate() sees them start from 0.
    for (const result of ["success", "error"] as const) this.#reconciles.inc({ result }, 0);
    this.#errors.inc({}, 0);
  }

  reconciled(result: ReconcileResult, seconds: number): void {
    this.#reconciles.inc({ result });
    if (result === "error") this.#errors.inc({});
    this.#duration.observe({}, seconds);
  }

  render(): string {
    return this.#registry.render();
  }
}

function countPhases(phases: Iterable<string | undefined>): Sample<"phase">[] {
  const counts = new Map<string, number>(jobPhases.map((phase) => [phase, 0]));
  for (const phase of phases) {
    const label = phase === undefined || phase === "" ? "New" : phase;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return [...counts].map(([phase, value]) => ({ labels: { phase }, value }));
}
