/** `trainfleet operator`: the Kubernetes operator that runs TrainingJobs (k8s/src). */

import type { PodGroupApi } from "@trainfleet/k8s/resource";
import { podGroupApis } from "@trainfleet/k8s/resource";
import type { Command } from "../command.js";
import { commonFlags } from "../common-flags.js";
import { UsageError } from "../flags.js";
import { connect, kubeFlags } from "../kube-client.js";
import { operatorPeerFlags, operatorPeerFromFlags } from "../operator-peer-flags.js";

function commaList(value: unknown): string[] {
  return typeof value === "string"
    ? value
        .split(",")
        .map((entry) => entry.trim())
        .filter((entry) => entry !== "")
    : [];
}

export const operatorCommand: Command = {
  name: "operator",
  usage:
    "trainfleet operator [--namespaces NS,...] [--gang-pod-groups volcano,coscheduling] [--operator-namespace NS --operator-pod-labels K=V,...]",
  summary:
    "Runs the Kubernetes operator: for each TrainingJob it creates the coordinator (and its Service), the parameter-server shards and the workers as pods, scales workers without restarting the others, applies the run policy, and keeps the job's status and conditions as the coordinator reports them. It finds its cluster as kubectl does (in a pod: its service account).",
  flags: {
    namespaces: {
      kind: "string",
      env: "TRAINFLEET_NAMESPACES",
      help: "Comma-separated namespaces whose TrainingJobs to manage. Default: all.",
    },
    "gang-pod-groups": {
      kind: "string",
      env: "TRAINFLEET_GANG_POD_GROUPS",
      help: "PodGroup APIs of gang schedulers installed in the cluster (volcano, coscheduling): a job with scheduling.gang.enabled gets a PodGroup. Default: none (the operator admits gangs itself).",
    },
    "status-poll-ms": {
      kind: "integer",
      min: 100,
      default: "5000",
      env: "TRAINFLEET_STATUS_POLL_MS",
      help: "How often a running job's coordinator is asked for its status.",
    },
    ...operatorPeerFlags,
    kubeconfig: kubeFlags.kubeconfig!,
    context: kubeFlags.context!,
    ...commonFlags,
  },
  async run({ values, logger, signal, env }) {
    const apis = commaList(values["gang-pod-groups"]);
    const unknown = apis.find((api) => !podGroupApis.includes(api as PodGroupApi));
    if (unknown !== undefined) throw new UsageError(`--gang-pod-groups: unknown API "${unknown}"; use ${podGroupApis.join(" or ")}`);
    // client-node is loaded by this role only: the others start faster without it.
    const { Operator, defaultOperatorPeer } = await import("@trainfleet/k8s");
    const operatorPeer = operatorPeerFromFlags(values, defaultOperatorPeer.podLabels);
    const { config, server, context } = await connect(values, env);
    logger.info({ server, context }, "connecting to the API server");
    const operator = await Operator.start({
      kubeConfig: config,
      logger,
      namespaces: commaList(values.namespaces),
      podGroupApis: apis as PodGroupApi[],
      statusPollMs: values["status-poll-ms"] as number,
      ...(operatorPeer === undefined ? {} : { operatorPeer }),
    });
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
    await operator.stop();
    return 0;
  },
};
