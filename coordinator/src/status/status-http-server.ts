/**
 * The coordinator's HTTP status API (node:http, no framework):
 *
 *   GET /v1/jobs/{id}          the JobStatus as proto JSON (the message gRPC GetJob sends)    read token
 *   GET /v1/jobs/{id}/watch    server-sent events, one per change (status-event-stream.ts)    read token
 *   GET /v1/jobs/{id}/workers  the JobWorkers as proto JSON                                   read token
 *   GET /metrics               Prometheus text format (coordinator-metrics.ts)               read token, unless metricsOpen
 *   GET /healthz               200 while the process serves HTTP                              open (kubelet probes)
 *   GET /readyz                200 while the coordinator serves its gRPC APIs, else 503       open
 *   GET /, /index.html         the dashboard page (dashboard-page.ts)                         open: it holds no status
 *
 * With tokens (api-tokens.ts), a request without a valid `Authorization: Bearer` gets a
 * 401 with `WWW-Authenticate: Bearer`, before anything about the job is said (even which
 * job runs here). Another job id is a 404 whose JSON error names it; any other path is a
 * 404; any method but GET is a 405. A target that is no path gets a 400 and a Host this
 * server does not answer to a 421 (runtime's http-server.ts). At most `maxWatchers` event
 * streams are open at once; one more gets a 503 with Retry-After.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { create } from "@bufbuild/protobuf";
import type { JobStatus } from "@trainfleet/proto";
import { Code, JobWorkersSchema, jobWorkersToJson, parseJobPath } from "@trainfleet/proto";
import type { Logger, MetricsSource, RunningHttpServer } from "@trainfleet/runtime";
import { sendError, sendJson, sendMethodNotAllowed, sendMetrics, sendText, startHttpServer } from "@trainfleet/runtime";
import type { ApiRight, ApiTokenOptions } from "./api-tokens.js";
import { ApiTokens, refusal } from "./api-tokens.js";
import { isDashboardPath, sendDashboard } from "./dashboard-page.js";
import { StatusEncoder } from "./status-encoder.js";
import { lastEventIdOf, streamStatusEvents } from "./status-event-stream.js";
import { statusServerMetrics } from "./status-server-metrics.js";
import type { StatusSource } from "./status-watch.js";
import { WatcherLimit } from "./watcher-limit.js";

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
  /** The read and control tokens (either grants read); none: the API is open. */
  tokens?: ApiTokenOptions | undefined;
  /** Serve /metrics without a token (for a Prometheus that scrapes without one). */
  metricsOpen?: boolean | undefined;
  /** Host names to answer to besides IP addresses, localhost and *.svc (--allowed-hosts). */
  allowedHosts?: readonly string[] | undefined;
  /** Event streams open at once at most. Default 256. */
  maxWatchers?: number | undefined;
  /** An event stream whose client has not taken its last event within this long is cut. Default 30 s. */
  stallMs?: number | undefined;
  /** How old a GET's status may be while the revision stands still (heartbeat times move). Default 1 s. */
  statusMaxAgeMs?: number | undefined;
}

export interface RunningStatusServer extends RunningHttpServer {
  /** The shared, once-per-change status serialisation (its counter shows how often it ran). */
  readonly encoder: StatusEncoder;
  readonly watchers: WatcherLimit;
}

/** The default of --max-watchers. */
export const defaultMaxWatchers = 256;

const paths = "/ (the dashboard), /v1/jobs/{id}, /v1/jobs/{id}/watch, /v1/jobs/{id}/workers, /metrics, /healthz and /readyz";
const bearerHeader = 'the header "Authorization: Bearer TOKEN"';

export async function startStatusHttpServer(source: StatusApiSource, options: StatusHttpOptions): Promise<RunningStatusServer> {
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const tokens = new ApiTokens(options.tokens ?? {});
  const encoder = new StatusEncoder(source, { ...(options.statusMaxAgeMs === undefined ? {} : { maxAgeMs: options.statusMaxAgeMs }) });
  const watchers = new WatcherLimit(options.maxWatchers ?? defaultMaxWatchers);
  const ownMetrics = statusServerMetrics(encoder, watchers);
  const metrics: MetricsSource = { render: () => source.metrics.render() + ownMetrics.render() };
  /** Whether the request may go on; if not, it has been answered. */
  const allowed = (request: IncomingMessage, response: ServerResponse, right: ApiRight, what: string): boolean => {
    const access = tokens.access(request.headers.authorization);
    const refused = refusal(tokens, access, right, what, bearerHeader);
    if (refused === undefined) return true;
    const challenge = access.kind === "missing" ? 'Bearer realm="trainfleet"' : 'Bearer realm="trainfleet", error="invalid_token"';
    if (refused.code === Code.UNAUTHENTICATED) sendError(response, 401, refused.code, refused.message, { "www-authenticate": challenge });
    else sendError(response, 403, refused.code, refused.message);
    return false;
  };
  const server = await startHttpServer(
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
      if (isDashboardPath(path)) return sendDashboard(response, path, encoder.status().jobId);
      if (path === "/metrics") {
        if (options.metricsOpen !== true && !allowed(request, response, "read", "read the metrics")) return;
        return sendMetrics(response, metrics);
      }
      if (!allowed(request, response, "read", "read the job's status")) return;
      const missing = missingJob(encoder.status(), job!.jobId);
      if (missing !== undefined) return sendError(response, 404, Code.NOT_FOUND, missing);
      switch (job!.view) {
        case "status":
          return sendText(response, 200, `${encoder.fresh().json}\n`, "application/json; charset=utf-8");
        case "workers": {
          const status = encoder.fresh().status;
          return sendJson(
            response,
            200,
            jobWorkersToJson(create(JobWorkersSchema, { jobId: status.jobId, generation: status.generation, workers: status.workers })),
          );
        }
        case "watch": {
          const release = watchers.acquire();
          if (release === undefined)
            return sendError(
              response,
              503,
              Code.UNAVAILABLE,
              `${watchers.max} status streams are open, the most this coordinator serves (--max-watchers): try again later, or read GET ${path.replace(/\/watch$/, "")}`,
              { "retry-after": "5" },
            );
          try {
            return await streamStatusEvents(encoder, response, lastEventIdOf(request, url), {
              keepAliveMs,
              stallMs: options.stallMs ?? 30_000,
              serverSignal,
              onDropped: () => {
                watchers.droppedOne();
                options.logger.info({ watchers: watchers.active }, "cut a status stream whose client stopped reading");
              },
            });
          } finally {
            release();
          }
        }
      }
    },
    options.logger,
    { allowedHosts: options.allowedHosts ?? [], allowedHostsFlag: "--allowed-hosts" },
  );
  return Object.assign(server, { encoder, watchers });
}

/** Why `jobId` is not served here, or undefined when it is this coordinator's job. */
function missingJob(status: JobStatus, jobId: string): string | undefined {
  if (status.jobId === "") return `no job "${jobId}" here: this coordinator has no job yet (it waits for JobService.SubmitJob)`;
  if (status.jobId !== jobId) return `no job "${jobId}" here: this coordinator runs job "${status.jobId}"`;
  return undefined;
}
