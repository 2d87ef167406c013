/** `trainfleet ps`: one parameter-server shard. */
import type { Command } from "../command.js";
import { requireNumber, requireString } from "../command.js";
import { commonFlags, coordinatorAddressFlag } from "../common-flags.js";
import { tlsFlags, transportSecurity } from "../tls-flags.js";

export const metricsListenFlag = {
  "metrics-listen": {
    kind: "string",
    env: "TRAINFLEET_METRICS_LISTEN",
    help: "host:port for the shard's Prometheus metrics (GET /metrics) and /healthz; port 0 picks a free one. Off when not given. The URL is logged.",
  },
} as const;

/** Bounds on the shard's TCP data channel (docs/security.md, Bounds); each unset one takes its default. */
export const dataChannelFlags = {
  "data-max-connections": {
    kind: "integer",
    env: "TRAINFLEET_DATA_MAX_CONNECTIONS",
    help: "Data channel connections the shard holds at once (default 256); one more is told RESOURCE_EXHAUSTED and closed.",
  },
  "data-hello-timeout-ms": {
    kind: "integer",
    env: "TRAINFLEET_DATA_HELLO_TIMEOUT_MS",
    help: "A data channel connection that has not completed its TLS handshake and HELLO this long after connecting is closed (default 10000).",
  },
  "data-idle-timeout-ms": {
    kind: "integer",
    env: "TRAINFLEET_DATA_IDLE_TIMEOUT_MS",
    help: "A data channel connection that sends no frame this long, with no request of its own waiting (a pull waiting for a slow step is), is closed; a worker reconnects (default 300000).",
  },
  "data-max-pending-requests": {
    kind: "integer",
    env: "TRAINFLEET_DATA_MAX_PENDING_REQUESTS",
    help: "Requests one data channel connection may send before reading their replies (default 16); more closes it.",
  },
} as const;

export const psCommand: Command = {
  name: "ps",
  usage: "trainfleet ps --coordinator HOST:PORT --shard-index N [flags]",
  summary:
    "Runs one parameter-server shard: it registers with the coordinator, serves its range of the parameters over gRPC, and exits 0 when the job ends.",
  flags: {
    ...coordinatorAddressFlag,
    "shard-index": { kind: "integer", env: "TRAINFLEET_SHARD_INDEX", help: "Which shard this process serves (0-based, required)." },
    listen: {
      kind: "string",
      default: "127.0.0.1:0",
      env: "TRAINFLEET_LISTEN",
      help: "host:port to serve on; port 0 picks a free one. Workers dial this address, so use a reachable host.",
    },
    ...metricsListenFlag,
    ...dataChannelFlags,
    ...tlsFlags,
    ...commonFlags,
  },
  async run({ values, logger, signal }) {
    const coordinator = requireString(values, "coordinator");
    const shardIndex = requireNumber(values, "shard-index");
    // Loaded here, not at the top: every process runs this file's module for its flags, and only a shard needs these.
    const [{ shardPeer }, { runShard }] = await Promise.all([import("@trainfleet/dataplane"), import("@trainfleet/paramserver")]);
    const security = await transportSecurity(values, logger, shardPeer(shardIndex));
    await runShard({
      coordinator,
      listen: values.listen as string,
      shardIndex,
      host: values.host as string,
      metricsListen: values["metrics-listen"] as string | undefined,
      logger,
      signal,
      security,
      dataChannel: {
        maxConnections: values["data-max-connections"] as number | undefined,
        helloTimeoutMs: values["data-hello-timeout-ms"] as number | undefined,
        idleTimeoutMs: values["data-idle-timeout-ms"] as number | undefined,
        maxPendingRequests: values["data-max-pending-requests"] as number | undefined,
      },
    });
    return 0;
  },
};
