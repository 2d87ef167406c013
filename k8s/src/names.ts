/**
 * The names and labels of everything the operator makes for a TrainingJob. Pods and services are
 * named after the job with a stable suffix (a shard or rank keeps its pod name across restarts),
 * and every one carries the job and role labels that the operator's informers select on.
 */
export const group = "trainfleet.dev";
export const version = "v1alpha1";
export const plural = "trainingjobs";
export const kind = "TrainingJob";
export const apiVersion = `${group}/${version}`;

export type Role = "coordinator" | "parameter-server" | "worker";

export const labels = {
  jobName: "trainfleet.dev/job-name",
  role: "trainfleet.dev/role",
  /** The shard index or worker rank, as a decimal string. */
  index: "trainfleet.dev/index",
  managedBy: "app.kubernetes.io/managed-by",
  kueueQueue: "kueue.x-k8s.io/queue-name",
} as const;

export const managedBy = "trainfleet-operator";

/** Ports of the trainfleet container in each role. */
export const ports = { coordinatorGrpc: 7070, coordinatorHttp: 7080, parameterServer: 7100, metrics: 9090 } as const;

export function coordinatorName(job: string): string {
  return `${job}-coordinator`;
}

export function shardPodName(job: string, index: number): string {
  return `${job}-ps-${index}`;
}

export function workerPodName(job: string, rank: number): string {
  return `${job}-worker-${rank}`;
}

export function roleLabels(job: string, role: Role, index?: number): Record<string, string> {
  const result: Record<string, string> = { [labels.managedBy]: managedBy, [labels.jobName]: job, [labels.role]: role };
  if (index !== undefined) result[labels.index] = String(index);
  return result;
}

/** The label selector of a job's worker pods in string form: the scale subresource's selector. */
export function workerSelector(job: string): string {
  return `${labels.jobName}=${job},${labels.role}=worker`;
}

/** The selector of everything the operator made, for any job. */
export const managedSelector = `${labels.managedBy}=${managedBy}`;
