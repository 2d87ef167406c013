/**
 * Serving a MetricRegistry over HTTP: `GET /metrics` in the text exposition format and
 * `GET /healthz`. A parameter-server shard runs this server on its own; the coordinator's
 * status server answers /metrics with the same `sendMetrics`.
 */
import type { ServerResponse } from "node:http";
import { Code } from "@trainfleet/proto";
import { sendError, sendMethodNotAllowed, sendText } from "../http/http-responses.js";
import type { RunningHttpServer } from "../http/http-server.js";
import { startHttpServer } from "../http/http-server.js";
import type { Logger } from "../logger.js";
import { metricsContentType } from "./metric-registry.js";

/** Anything that renders the exposition text: a MetricRegistry, or a wrapper around one. */
export interface MetricsSource {
  render(): string;
}

export function sendMetrics(response: ServerResponse, metrics: MetricsSource): void {
  sendText(response, 200, metrics.render(), metricsContentType);
}

export function startMetricsServer(listen: string, metrics: MetricsSource, logger: Logger): Promise<RunningHttpServer> {
  return startHttpServer(
    listen,
    (request, response) => {
      const path = new URL(request.url ?? "/", "http://localhost").pathname;
      if (path !== "/metrics" && path !== "/healthz")
        return sendError(response, 404, Code.NOT_FOUND, `no such path: ${path} (this server has /metrics and /healthz)`);
      if (request.method !== "GET") return sendMethodNotAllowed(response, request.method, path);
      if (path === "/healthz") return sendText(response, 200, "ok\n");
      sendMetrics(response, metrics);
    },
    logger,
  );
}
