/**
 * The coordinator's Prometheus metrics (served at /metrics by the status server). Levels
 * (phase, steps, throughput, live workers, checkpoint age) are read from the job status at
 * scrape time; what happens between scrapes (step durations, samples, worker timings,
 * generation changes, evictions) is counted as it happens.
 *
 * Every series has a `job_id` label. It is not called `job` because Prometheus sets `job`
 * on every scraped series itself (the scrape job), and would rename ours to `exported_job`.
 */

import type { JobStatus } from "@trainfleet/proto";
import { JobPhase, WorkerState } from "@trainfleet/proto";
import type { Counter, Histogram, Sample } from "@trainfleet/runtime";
import { MetricRegistry } from "@trainfleet/runtime";

export type EvictionCause = "lease_expired" | "stream_closed" | "straggler" | "replaced" | "failed";

/** Step durations from a few milliseconds (a small model on one machine) to half a minute. */
export const stepDurationBuckets = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

const phaseLabels: ReadonlyArray<[JobPhase, string]> = [
  [JobPhase.PENDING, "pending"],
  [JobPhase.RUNNING, "running"],
  [JobPhase.PAUSED, "paused"],
  [JobPhase.EVALUATING, "evaluating"],
  [JobPhase.SUCCEEDED, "succeeded"],
  [JobPhase.FAILED, "failed"],
];

const live = new Set<WorkerState>([WorkerState.REGISTERED, WorkerState.TRAINING, WorkerState.EVALUATING, WorkerState.STANDBY]);

export class CoordinatorMetrics {
  readonly #registry = new MetricRegistry();
  readonly #status: () => JobStatus;
  readonly #now: () => number;
  /** The status of the scrape in progress, so that it is built once per scrape. */
  #scrape: JobStatus | undefined;
  readonly #samples: Counter<"job_id">;
  readonly #stepSeconds: Histogram<"job_id">;
  readonly #computeSeconds: Counter<"job_id" | "worker_id">;
  readonly #communicationSeconds: Counter<"job_id" | "worker_id">;
  readonly #generationChanges: Counter<"job_id">;
  readonly #evictions: Counter<"job_id" | "role" | "cause">;
  readonly #workerFailures: Counter<"job_id" | "reason">;
  #lastStepAt: number | undefined;

  constructor(status: () => JobStatus, now: () => number) {
    this.#status = status;
    this.#now = now;
    const r = this.#registry;
    const job = ["job_id"] as const;
    r.gauge({
      name: "trainfleet_job_phase",
      help: "1 for the job's current phase, 0 for the others.",
      labelNames: ["job_id", "phase"],
      collect: () => this.#phases(),
    });
    r.counter({
      name: "trainfleet_steps_total",
      help: "Training steps completed (every rank has reported the step).",
      labelNames: job,
      collect: () => this.#level((s) => s.step),
    });
    this.#samples = r.counter({ name: "trainfleet_samples_total", help: "Training samples in the completed steps.", labelNames: job });
    r.gauge({
      name: "trainfleet_samples_per_second",
      help: "Training throughput over the last completed steps.",
      labelNames: job,
      collect: () => this.#level((s) => s.samplesPerSecond),
    });
    this.#stepSeconds = r.histogram({
      name: "trainfleet_step_duration_seconds",
      help: "Time between the completions of consecutive training steps.",
      labelNames: job,
      buckets: stepDurationBuckets,
    });
    this.#computeSeconds = r.counter({
      name: "trainfleet_worker_compute_seconds_total",
      help: "Time workers spent computing gradients, from their progress reports.",
      labelNames: ["job_id", "worker_id"],
    });
    this.#communicationSeconds = r.counter({
      name: "trainfleet_worker_communication_seconds_total",
      help: "Time workers spent pushing gradients and pulling parameters, from their progress reports.",
      labelNames: ["job_id", "worker_id"],
    });
    r.gauge({
      name: "trainfleet_training_loss",
      help: "Mean training loss of the last completed step.",
      labelNames: job,
      collect: () => this.#level((s) => (Number.isFinite(s.loss) ? s.loss : undefined)),
    });
    r.gauge({
      name: "trainfleet_eta_seconds",
      help: "Estimated time until training is done, at the current throughput.",
      labelNames: job,
      collect: () => this.#level((s) => s.etaSeconds),
    });
    r.gauge({
      name: "trainfleet_live_workers",
      help: "Workers registered and neither lost nor stopped.",
      labelNames: job,
      collect: () => this.#level((s) => s.workers.filter((w) => live.has(w.state)).length),
    });
    r.gauge({
      name: "trainfleet_worker_dataset_read_bytes",
      help: "Bytes each worker has read from the dataset's storage, as it last reported (a sharded dataset's blocks; 0 for a built-in dataset).",
      labelNames: ["job_id", "worker_id"],
      collect: () => {
        const status = this.#job();
        return status === undefined
          ? []
          : status.workers.map((w) => ({ labels: { job_id: status.jobId, worker_id: w.workerId }, value: Number(w.bytesRead) }));
      },
    });
    r.gauge({
      name: "trainfleet_generation",
      help: "The job's membership generation (0 before it starts).",
      labelNames: job,
      collect: () => this.#level((s) => s.generation),
    });
    this.#generationChanges = r.counter({
      name: "trainfleet_generation_changes_total",
      help: "Membership generations begun (ranks and data split recomputed).",
      labelNames: job,
    });
    this.#evictions = r.counter({
      name: "trainfleet_member_evictions_total",
      help: "Members marked lost, by role and cause.",
      labelNames: ["job_id", "role", "cause"],
    });
    this.#workerFailures = r.counter({
      name: "trainfleet_worker_failures_total",
      help: "Fatal failures workers reported before exiting (ReportFailure), by reason.",
      labelNames: ["job_id", "reason"],
    });
    r.gauge({
      name: "trainfleet_checkpoint_age_seconds",
      help: "Time since the newest complete checkpoint (no sample before the first).",
      labelNames: job,
      collect: () =>
        this.#level((s) => (s.lastCheckpointVersion === undefined ? undefined : (this.#now() - Number(s.lastCheckpointUnixMs)) / 1000)),
    });
  }

  /** The exposition text: every metric, with the levels read from one status. */
  render(): string {
    this.#scrape = this.#status();
    try {
      return this.#registry.render();
    } finally {
      this.#scrape = undefined;
    }
  }

  /** Starts the job's counters at 0, so that they exist before their first event. */
  jobSubmitted(jobId: string): void {
    this.#samples.inc({ job_id: jobId }, 0);
    this.#generationChanges.inc({ job_id: jobId }, 0);
    for (const role of ["worker", "parameter_server"]) {
      for (const cause of ["lease_expired", "stream_closed", "straggler", "replaced", "failed"] satisfies EvictionCause[])
        this.#evictions.inc({ job_id: jobId, role, cause }, 0);
    }
  }

  stepCompleted(jobId: string, samples: number, at: number): void {
    this.#samples.inc({ job_id: jobId }, samples);
    if (this.#lastStepAt !== undefined) this.#stepSeconds.observe({ job_id: jobId }, Math.max(0, at - this.#lastStepAt) / 1000);
    this.#lastStepAt = at;
  }

  progressReported(jobId: string, workerId: string, computeMs: number, communicateMs: number): void {
    this.#computeSeconds.inc({ job_id: jobId, worker_id: workerId }, Math.max(0, computeMs) / 1000);
    this.#communicationSeconds.inc({ job_id: jobId, worker_id: workerId }, Math.max(0, communicateMs) / 1000);
  }

  generationChanged(jobId: string): void {
    this.#generationChanges.inc({ job_id: jobId });
    this.#lastStepAt = undefined;
  }

  memberEvicted(jobId: string, role: "worker" | "parameter_server", cause: EvictionCause): void {
    this.#evictions.inc({ job_id: jobId, role, cause });
  }

  /** A worker reported a fatal failure (its reason is a validated CamelCase word). */
  workerFailed(jobId: string, reason: string): void {
    this.#workerFailures.inc({ job_id: jobId, reason });
  }

  #job(): JobStatus | undefined {
    const status = this.#scrape ?? this.#status();
    return status.jobId === "" ? undefined : status;
  }

  #level(read: (status: JobStatus) => number | undefined): Array<Sample<"job_id">> {
    const status = this.#job();
    const value = status === undefined ? undefined : read(status);
    return status === undefined || value === undefined ? [] : [{ labels: { job_id: status.jobId }, value }];
  }

  #phases(): Array<Sample<"job_id" | "phase">> {
    const status = this.#job();
    if (status === undefined) return [];
    return phaseLabels.map(([phase, label]) => ({ labels: { job_id: status.jobId, phase: label }, value: status.phase === phase ? 1 : 0 }));
  }
}
