/** `trainfleet ps`: one parameter-server shard. */
import { shardPeer } from "@trainfleet/dataplane";
import { runShard } from "@trainfleet/paramserver";
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
    ...tlsFlags,
    ...commonFlags,
  },
  async run({ values, logger, signal }) {
    const coordinator = requireString(values, "coordinator");
    const shardIndex = requireNumber(values, "shard-index");
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
    });
    return 0;
  },
};
