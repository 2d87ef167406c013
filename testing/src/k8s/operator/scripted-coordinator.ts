/**
 * A job's coordinator status API as the operator reads it: the coordinator's real HTTP status
 * server (startStatusHttpServer) serving a JobStatus that the test sets, since no training runs
 * inside these operator tests.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { startStatusHttpServer } from "@trainfleet/coordinator";
import type { JobStatus } from "@trainfleet/proto";
import { JobPhase, JobStatusSchema, WorkerState } from "@trainfleet/proto";
import type { RunningHttpServer } from "@trainfleet/runtime";
import { silentLogger } from "@trainfleet/runtime";

/** JobStatus fields as `create` takes them (proto field names in camelCase). */
export type StatusFields = Record<string, unknown>;

export class ScriptedCoordinator {
  #status: JobStatus;
  #revision = 0;
  #changed: (() => void)[] = [];

  private constructor(
    jobId: string,
    private server: RunningHttpServer | undefined = undefined,
  ) {
    this.#status = create(JobStatusSchema, {
      jobId,
      phase: JobPhase.PENDING,
      reason: "WaitingForMembers",
      message: "waiting for the shards and workers to register",
    });
  }

  /** `tokens`: the read (and control) token its status API then requires, as a coordinator given --read-token-file does. */
  static async start(jobId: string, tokens?: { read: string; control?: string }): Promise<ScriptedCoordinator> {
    const coordinator = new ScriptedCoordinator(jobId);
    const source = {
      get revision() {
        return coordinator.#revision;
      },
      get phase() {
        return coordinator.#status.phase;
      },
      status: () => coordinator.#status,
      changedSince: (revision: number, signal: AbortSignal) =>
        new Promise<void>((resolve) => {
          if (revision !== coordinator.#revision || signal.aborted) return resolve();
          coordinator.#changed.push(resolve);
          signal.addEventListener("abort", () => resolve(), { once: true });
        }),
      metrics: { render: () => "" },
    };
    coordinator.server = await startStatusHttpServer(source, {
      listen: "127.0.0.1:0",
      logger: silentLogger,
      readiness: () => ({ ready: true, reason: "serving" }),
      ...(tokens === undefined ? {} : { tokens }),
    });
    return coordinator;
  }

  get url(): string {
    return this.server!.url;
  }

  /** Replaces the reported status with these fields (over a PENDING status of this job). */
  report(fields: StatusFields): void {
    this.#status = create(JobStatusSchema, { ...fields, jobId: this.#status.jobId } as MessageInitShape<typeof JobStatusSchema>);
    this.#revision++;
    for (const resolve of this.#changed.splice(0)) resolve();
  }

  /** A training job: `workers` ranks training, at `step`. */
  training(workers: number, step: number, extra: StatusFields = {}): void {
    this.report({
      phase: JobPhase.RUNNING,
      reason: "Training",
      epoch: 1,
      epochs: 2,
      step,
      totalSteps: 100,
      loss: 0.5,
      samplesPerSecond: 1000,
      workers: Array.from({ length: workers }, (_, rank) => ({ workerId: `w${rank}`, rank, state: WorkerState.TRAINING })),
      ...extra,
    });
  }

  close(): Promise<void> {
    return this.server!.close();
  }
}
