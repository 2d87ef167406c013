/**
 * The paths of the coordinator's HTTP status API, shared by the server and its clients.
 *
 *   GET /v1/jobs/{id}          the JobStatus (JSON)
 *   GET /v1/jobs/{id}/watch    server-sent events: one `status` event per change
 *   GET /v1/jobs/{id}/workers  the JobWorkers (JSON)
 *   GET /metrics               Prometheus text exposition format 0.0.4
 *   GET /healthz, /readyz      liveness and readiness
 */
export const statusPaths = {
  job: (jobId: string) => `/v1/jobs/${encodeURIComponent(jobId)}`,
  watch: (jobId: string) => `/v1/jobs/${encodeURIComponent(jobId)}/watch`,
  workers: (jobId: string) => `/v1/jobs/${encodeURIComponent(jobId)}/workers`,
  metrics: "/metrics",
  healthz: "/healthz",
  readyz: "/readyz",
} as const;

export type JobRoute = { jobId: string; view: "status" | "watch" | "workers" };

/** The job route a path names, or undefined for any other path. */
export function parseJobPath(path: string): JobRoute | undefined {
  const match = /^\/v1\/jobs\/([^/]+)(?:\/(watch|workers))?$/.exec(path);
  if (match === null) return undefined;
  let jobId: string;
  try {
    jobId = decodeURIComponent(match[1]!);
  } catch {
    return undefined;
  }
  return { jobId, view: match[2] === "watch" ? "watch" : match[2] === "workers" ? "workers" : "status" };
}
