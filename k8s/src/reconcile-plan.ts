/**
 * The two ends of a reconcile: what it is given (Observed: the job, its pods and Service, what its
 * coordinator reports, the time; and the operator's ReconcileOptions) and what it returns for the
 * operator to apply (ReconcilePlan: objects to create and pods to delete, the new status, the
 * Kubernetes Events to record, when to look again). Plain data, so that reconcile stays pure.
 */
import type { KubernetesObject, V1Pod, V1Service } from "@kubernetes/client-node";
import type { CoordinatorReport } from "./coordinator-status.js";
import type { PodGroupApi } from "./pod-group-apis.js";
import type { TrainingJob, TrainingJobStatus } from "./training-job.js";

export interface Observed {
  job: TrainingJob;
  /** The job's pods (this incarnation's), terminating ones included. */
  pods: readonly V1Pod[];
  service: V1Service | undefined;
  /** Whether the gang's PodGroup exists (asked only when the job has one). */
  podGroupExists: boolean;
  coordinator: CoordinatorReport | undefined;
  now: Date;
}

export interface ReconcileOptions {
  /** PodGroup APIs of gang schedulers installed in the cluster (--gang-pod-groups). */
  podGroupApis: readonly PodGroupApi[];
  /** How often a running job's coordinator is asked for its status. */
  statusPollMs: number;
  /** How long shards and workers may take to exit by themselves after the coordinator ended the job. */
  finishGraceMs: number;
}

/**
 * A Kubernetes Event (core/v1) to record on the TrainingJob, one per condition transition or
 * failed worker pod. Not the coordinator's proto JobEvent, which the CLI streams from NATS.
 */
export interface KubeEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export interface ReconcilePlan {
  create: KubernetesObject[];
  /** Pods to delete, by name, with the uid that must still match (a precondition). */
  deletePods: { name: string; uid: string }[];
  /** The whole new status, or undefined when it is unchanged. */
  status: TrainingJobStatus | undefined;
  events: KubeEvent[];
  /** ttlSecondsAfterFinished has passed: delete the TrainingJob (its objects go with it). */
  deleteJob: boolean;
  requeueAfterMs: number | undefined;
}
