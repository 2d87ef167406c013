/**
 * The coordinator's HTTP status API (node:http, no framework):
 *
 *   GET /v1/jobs/{id}          the JobStatus as proto JSON (the message gRPC GetJob sends)
 *   GET /v1/jobs/{id}/watch    server-sent events, one per change (status-event-stream.ts)
 *   GET /v1/jobs/{id}/workers  the JobWorkers as proto JSON
 *   GET /metrics               Prometheus text format (coordinator-metrics.ts)
 *   GET /healthz               200 while the process serves HTTP
 *   GET /readyz                200 while the coordinator serves its gRPC APIs, else 503
 *   GET /, /index.html         the dashboard page (dashboard-page.ts)
 *
 * Another job id is a 404 whose JSON error names it; any other path is a 404; any method
 * but GET is a 405.
 */
import { create } from "@bufbuild/protobuf";
import type { JobStatus } from "@trainfleet/proto";
import { Code, JobWorkersSchema, jobStatusToJson, jobWorkersToJson, parseJobPath } from "@trainfleet/proto";
import type { Logger, MetricsSource, RunningHttpServer } from "@trainfleet/runtime";
import { sendError, sendJson, sendMethodNotAllowed, sendMetrics, sendText, startHttpServer } from "@trainfleet/runtime";
import { isDashboardPath, sendDashboard } from "./dashboard-page.js";
import { lastEventIdOf, streamStatusEvents } from "./status-event-stream.js";
import type { StatusSource } from "./status-watch.js";

export interface StatusApiSource extends StatusSource {
  readonly metrics: MetricsSource;
}

export interface StatusHttpOptions {
  /** host:port; port 0 picks a free one. */
  listen: string;
  logger: Logger;
  /** Whether the coordinator serves its gRPC APIs now, and if not, why. */
  readiness: () => { ready: boolean; reason: string };
  /** How often an idle event stream gets a comment line. Default 15 s. */
  keepAliveMs?: number;
}

const paths = "/ (the dashboard), /v1/jobs/{id}, /v1/jobs/{id}/watch, /v1/jobs/{id}/workers, /metrics, /healthz and /readyz";

export function startStatusHttpServer(source: StatusApiSource, options: StatusHttpOptions): Promise<RunningHttpServer> {
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  return startHttpServer(
    options.listen,
    async (request, response, serverSignal) => {
      const url = new URL(request.url ?? "/", "http://localhost");
      const path = url.pathname;
      const job = parseJobPath(path);
      const fixed = path === "/metrics" || path === "/healthz" || path === "/readyz" || isDashboardPath(path);
      if (job === undefined && !fixed)
        return sendError(response, 404, Code.NOT_FOUND, `no such path: ${path}; the status API has ${paths}`);
      if (request.method !== "GET") return sendMethodNotAllowed(response, request.method, path);
      if (path === "/healthz") return sendText(response, 200, "ok\n");
      if (path === "/readyz") {
        const { ready, reason } = options.readiness();
        return sendText(response, ready ? 200 : 503, `${reason}\n`);
      }
      if (path === "/metrics") return sendMetrics(response, source.metrics);
      if (isDashboardPath(path)) return sendDashboard(response, path, source.status().jobId);
      const status = source.status();
      const missing = missingJob(status, job!.jobId);
      if (missing !== undefined) return sendError(response, 404, Code.NOT_FOUND, missing);
      switch (job!.view) {
        case "status":
          return sendJson(response, 200, jobStatusToJson(status));
        case "workers":
          return sendJson(
            response,
            200,
            jobWorkersToJson(create(JobWorkersSchema, { jobId: status.jobId, generation: status.generation, workers: status.workers })),
          );
        case "watch":
          return streamStatusEvents(source, response, lastEventIdOf(request, url), { keepAliveMs, serverSignal });
      }
    },
    options.logger,
  );
}

/** Why `jobId` is not served here, or undefined when it is this coordinator's job. */
function missingJob(status: JobStatus, jobId: string): string | undefined {
  if (status.jobId === "") return `no job "${jobId}" here: this coordinator has no job yet (it waits for JobService.SubmitJob)`;
  if (status.jobId !== jobId) return `no job "${jobId}" here: this coordinator runs job "${status.jobId}"`;
  return undefined;
}
