/**
 * The TrainingJob custom resource as the operator reads it (k8s/crd.yaml is the schema; the API
 * server has validated and defaulted every field before the operator sees it).
 */
import type { JsonObject } from "./json.js";

/**
 * CreateFailed is no phase: it says that the API server refused (or did not answer) the
 * creation of one of the job's objects, with its message (create-failures.ts).
 */
export type ConditionType =
  | "Created"
  | "Admitted"
  | "Running"
  | "Rescaling"
  | "Restarting"
  | "Suspended"
  | "Succeeded"
  | "Failed"
  | "CreateFailed";

export interface Condition {
  type: ConditionType;
  status: "True" | "False" | "Unknown";
  reason: string;
  message?: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface TrainingJobStatus {
  conditions?: Condition[];
  phase?: ConditionType;
  replicas?: number;
  readyReplicas?: number;
  selector?: string;
  epoch?: number;
  step?: number;
  loss?: number;
  accuracy?: number;
  samplesPerSecond?: number;
  lastCheckpoint?: { step: number; time: string };
  coordinatorEndpoint?: string;
  startTime?: string;
  completionTime?: string;
  observedGeneration?: number;
  /** Restarts of the job after a coordinator or parameter-server failure (runPolicy.backoffLimit). */
  restarts?: number;
  /** workers.replicas when the coordinator was first started: it fixes the global batch. */
  trainingReplicas?: number;
  /** Where the coordinator wrote the job's output (spec.output), once it ended the job. */
  output?: OutputStatus;
}

/** status.output: the claim, the folder on it, and the files the coordinator wrote there. */
export interface OutputStatus {
  claimName: string;
  path: string;
  files: string[];
  writtenAt: string;
}

export interface ResourceRequirements {
  requests?: Record<string, string | number>;
  limits?: Record<string, string | number>;
}

/**
 * Overrides merged over the pods of one role (pod-templates.ts): labels and annotations
 * added, and a partial pod spec merged as a strategic merge patch would.
 */
export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: JsonObject;
}

export interface TrainingJobSpec {
  image: string;
  model?: JsonObject;
  dataset?: JsonObject;
  workers?: {
    replicas?: number;
    minWorkers?: number;
    maxWorkers?: number;
    pauseTimeoutSeconds?: number;
    stepDeadlineMs?: number;
    maxMissedDeadlines?: number;
    resources?: ResourceRequirements;
    template?: PodTemplate;
  };
  coordinator?: { resources?: ResourceRequirements; template?: PodTemplate };
  parameterServers?: {
    replicas?: number;
    chunkBytes?: number;
    dataPlane?: "tcp" | "grpc";
    placement?: "dedicated" | "colocated";
    wireDtype?: string;
    resources?: ResourceRequirements;
    template?: PodTemplate;
  };
  training?: JsonObject;
  checkpoints?: { claimName: string; everySteps?: number };
  /** Where the coordinator writes the trained model and the final status: a folder of a claim (job-output.ts). */
  output?: { persistentVolumeClaim: { claimName: string }; path?: string };
  /** The volume that holds the user's model and data files, mounted read-only into every pod. */
  storage?: { persistentVolumeClaim: { claimName: string }; mountPath?: string };
  /** A Secret whose AWS_* keys become env vars of every pod, by reference. */
  credentialsSecret?: string;
  runPolicy?: {
    backoffLimit?: number;
    activeDeadlineSeconds?: number;
    ttlSecondsAfterFinished?: number;
    suspend?: boolean;
    cleanPodPolicy?: "None" | "Running" | "All";
  };
  /** insecure: plaintext between the job's pods, on purpose (default false: mutual TLS). */
  security?: { insecure?: boolean };
  scheduling?: {
    gang?: { enabled?: boolean; timeoutSeconds?: number };
    schedulerName?: string;
    priorityClassName?: string;
    queueName?: string;
  };
}

export interface TrainingJob {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: TrainingJobSpec;
  status?: TrainingJobStatus;
}

/** Defaults the operator applies where the CRD leaves a field unset. */
export const runPolicyDefaults = { backoffLimit: 3, cleanPodPolicy: "Running", gangTimeoutSeconds: 300 } as const;

export function workerReplicas(job: TrainingJob): number {
  return job.spec.workers?.replicas ?? 2;
}

export function shardCount(job: TrainingJob): number {
  const servers = job.spec.parameterServers;
  if (servers?.placement === "colocated") return 0;
  return servers?.replicas ?? 2;
}
