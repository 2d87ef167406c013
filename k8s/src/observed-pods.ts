/**
 * How a reconcile reads the job's pods: each one's role and shard index or worker rank (from the
 * labels the operator gave it), whether it is going or gone, and how a failed one ended, in words
 * for an Event or condition.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Role } from "./names.js";
import { labels } from "./names.js";

export function roleOf(pod: V1Pod): Role | undefined {
  const role = pod.metadata?.labels?.[labels.role];
  return role === "coordinator" || role === "parameter-server" || role === "worker" ? role : undefined;
}

/** The shard index or worker rank; -1 for the coordinator. */
export function indexOf(pod: V1Pod): number {
  return Number(pod.metadata?.labels?.[labels.index] ?? -1);
}

export const isTerminating = (pod: V1Pod) => pod.metadata?.deletionTimestamp !== undefined;
export const isFinishedPod = (pod: V1Pod) => pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";

/**
 * "NAME exited 1 (Error): <the last line it logged>", from the container's terminated state; the
 * pods ask for their log's tail as termination message when they fail (FallbackToLogsOnError).
 */
export function howItEnded(pod: V1Pod): string {
  const terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
  const name = pod.metadata?.name ?? "a pod";
  if (terminated === undefined) return `${name} failed${pod.status?.reason === undefined ? "" : ` (${pod.status.reason})`}`;
  const lastLine = terminated.message?.trim().split("\n").at(-1)?.slice(0, 400);
  return `${name} exited ${terminated.exitCode}${terminated.reason === undefined ? "" : ` (${terminated.reason})`}${lastLine ? `: ${lastLine}` : ""}`;
}
