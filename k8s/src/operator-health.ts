/**
 * The operator's probe server, for the kubelet: `GET /healthz` (liveness) answers 200 while the
 * operator works, leader or standby, and 503 once it has lost its Lease or stopped, so that a
 * process that has not exited yet is restarted; `GET /readyz` (readiness) answers 200 once every
 * informer has listed what it watches, that is when this replica could take over at once, and
 * 503 before or after, saying why. A rolling update waits for the new pod to be ready before it
 * stops an old one. Metrics have a server of their own (runtime's startMetricsServer), so that a
 * NetworkPolicy can let Prometheus reach them without anything else.
 */
import { Code } from "@trainfleet/proto";
import type { Logger, MetricsSource, RunningHttpServer } from "@trainfleet/runtime";
import { sendError, sendMethodNotAllowed, sendText, startHttpServer, startMetricsServer } from "@trainfleet/runtime";

export interface OperatorProbes {
  /** Why the operator should be restarted, or undefined while it works. */
  notLive(): string | undefined;
  /** Why the operator cannot work yet (or any more), or undefined when it can. */
  notReady(): string | undefined;
}

export function startHealthServer(listen: string, probes: OperatorProbes, logger: Logger): Promise<RunningHttpServer> {
  return startHttpServer(
    listen,
    (request, response) => {
      const path = new URL(request.url ?? "/", "http://localhost").pathname;
      if (path !== "/healthz" && path !== "/readyz")
        return sendError(response, 404, Code.NOT_FOUND, `no such path: ${path} (this server has /healthz and /readyz)`);
      if (request.method !== "GET") return sendMethodNotAllowed(response, request.method, path);
      const problem = path === "/healthz" ? probes.notLive() : probes.notReady();
      sendText(response, problem === undefined ? 200 : 503, `${problem ?? "ok"}\n`);
    },
    logger,
  );
}

export interface OperatorServers {
  health?: RunningHttpServer;
  metrics?: RunningHttpServer;
}

/** The probe server and the metrics server, each where asked for (neither by default). */
export async function startOperatorServers(
  listen: { health: string | undefined; metrics: string | undefined },
  probes: OperatorProbes,
  metrics: MetricsSource,
  logger: Logger,
): Promise<OperatorServers> {
  const servers: OperatorServers = {};
  try {
    if (listen.health !== undefined) {
      servers.health = await startHealthServer(listen.health, probes, logger);
      logger.info({ address: servers.health.address }, "serving /healthz and /readyz");
    }
    if (listen.metrics !== undefined) {
      servers.metrics = await startMetricsServer(listen.metrics, metrics, logger);
      logger.info({ address: servers.metrics.address }, "serving /metrics");
    }
  } catch (error) {
    await servers.health?.close();
    throw error;
  }
  return servers;
}
