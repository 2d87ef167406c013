/**
 * The two ends of a reconcile: what it is given (Observed: the job, its pods and Service, its
 * Kueue Workload, what its coordinator reports, the time; and the operator's ReconcileOptions)
 * and what it returns for the operator to apply (ReconcilePlan: objects to create and pods to
 * delete, changes to the Workload, the new status, the Kubernetes Events to record, when to look
 * again). Plain data, so that reconcile stays pure.
 */
import type { KubernetesObject, V1Pod, V1Service } from "@kubernetes/client-node";
import type { CoordinatorReport } from "./coordinator-status.js";
import type { OperatorPeer } from "./job-network-policy.js";
import type { ResourceFlavor, Workload } from "./kueue-workload.js";
import type { CredentialRequest } from "./member-credentials.js";
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
  /** The job's Kueue Workload (this incarnation's), when the operator runs with --kueue. */
  workload?: Workload | undefined;
  /** The ResourceFlavors the Workload's admission names, by name (those the operator has read). */
  resourceFlavors?: ReadonlyMap<string, ResourceFlavor>;
  now: Date;
}

export interface ReconcileOptions {
  /** PodGroup APIs of gang schedulers installed in the cluster (--gang-pod-groups). */
  podGroupApis: readonly PodGroupApi[];
  /** How often a running job's coordinator is asked for its status. */
  statusPollMs: number;
  /** How long shards and workers may take to exit by themselves after the coordinator ended the job. */
  finishGraceMs: number;
  /** The operator's pods, which the job's NetworkPolicy lets reach the coordinator's status API. Default: the chart's labels, any namespace. */
  operatorPeer?: OperatorPeer;
  /** Kueue admits the jobs that name a queue, through a Workload each (--kueue; kueue-admission.ts). Default false. */
  kueue?: boolean;
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

/**
 * A change to the job's Kueue Workload (its creation is in `create`): spec.active (the user's
 * suspend), a merge patch of its /status (admission cleared after an eviction, Finished), or its
 * deletion (to queue the job again at a new size). The status patch carries the resourceVersion
 * it was computed from, so that it never overwrites what Kueue wrote meanwhile.
 */
export type WorkloadChange =
  | { action: "setActive"; name: string; active: boolean }
  | { action: "patchStatus"; name: string; resourceVersion: string; status: Record<string, unknown> }
  | { action: "delete"; name: string; uid: string };

export interface ReconcilePlan {
  /**
   * Secrets to make before anything in `create`: the job's bearer tokens (when its coordinator
   * pod is created) and each created pod's TLS credentials, issued by the job's CA (made with the
   * first of them). Key material cannot come from a pure function: credential-secrets.ts makes it.
   */
  secrets: { tokens: boolean; members: CredentialRequest[] };
  /**
   * The credentials of the job's pods that stay (all but those created now): each Secret whose
   * certificate is past 2/3 of its life is re-issued in place (credential-secrets.ts reads when).
   */
  renewSecrets: CredentialRequest[];
  create: KubernetesObject[];
  /** Pods to delete, by name, with the uid that must still match (a precondition). */
  deletePods: { name: string; uid: string }[];
  /** Changes to the job's Kueue Workload, in order. */
  workload: WorkloadChange[];
  /** The whole new status, or undefined when it is unchanged. */
  status: TrainingJobStatus | undefined;
  events: KubeEvent[];
  /** ttlSecondsAfterFinished has passed: delete the TrainingJob (its objects go with it). */
  deleteJob: boolean;
  requeueAfterMs: number | undefined;
}
