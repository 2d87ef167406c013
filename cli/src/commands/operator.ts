/**
 * `trainfleet operator`: the Kubernetes operator that runs TrainingJobs (k8s/src).
 *
 * --leader-elect is off by default: a bare `trainfleet operator` (a laptop against a test cluster,
 * the tests here) is the only one running and needs no Lease, no namespace of its own and no
 * RBAC on Leases. The Helm chart, which runs two replicas, turns it on. A leader that loses its
 * Lease exits 1, so that its Deployment starts it again as a standby.
 */

import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { PodGroupApi } from "@trainfleet/k8s/resource";
import { podGroupApis } from "@trainfleet/k8s/resource";
import type { Command } from "../command.js";
import { commonFlags } from "../common-flags.js";
import type { FlagTable, FlagValue } from "../flags.js";
import { UsageError } from "../flags.js";
import { connect, kubeFlags, serviceAccountDir } from "../kube-client.js";
import { operatorPeerFlags, operatorPeerFromFlags } from "../operator-peer-flags.js";

function commaList(value: unknown): string[] {
  return typeof value === "string"
    ? value
        .split(",")
        .map((entry) => entry.trim())
        .filter((entry) => entry !== "")
    : [];
}

const leaderElectionFlags = {
  "leader-elect": {
    kind: "boolean",
    default: "false",
    env: "TRAINFLEET_LEADER_ELECT",
    help: "Run as one of several replicas: only the holder of a coordination.k8s.io Lease reconciles, the others keep their caches and take over when it stops renewing. The chart turns it on; without it, run one operator only.",
  },
  "leader-election-namespace": {
    kind: "string",
    env: "TRAINFLEET_LEADER_ELECTION_NAMESPACE",
    help: "The namespace of the Lease. Default: the pod's own ($POD_NAMESPACE, else its service account's namespace file).",
  },
  "leader-election-id": {
    kind: "string",
    default: "trainfleet-operator",
    env: "TRAINFLEET_LEADER_ELECTION_ID",
    help: "The Lease's name: the operators that share it elect one leader.",
  },
  "leader-election-lease-duration": {
    kind: "integer",
    min: 1,
    default: "15",
    help: "Seconds a Lease nobody renews stays held: how long a standby waits after the leader died.",
  },
  "leader-election-renew-deadline": {
    kind: "number",
    default: "10",
    help: "Seconds a leader keeps trying to renew its Lease before it stops reconciling and exits; shorter than the lease duration.",
  },
  "leader-election-retry-period": {
    kind: "number",
    default: "2",
    help: "Seconds between tries to take or renew the Lease.",
  },
} as const satisfies FlagTable;

const serverFlags = {
  "health-listen": {
    kind: "string",
    env: "TRAINFLEET_HEALTH_LISTEN",
    help: "host:port to serve /healthz (liveness) and /readyz (readiness: informers synced) on, e.g. 0.0.0.0:8081. Default: not served.",
  },
  "metrics-listen": {
    kind: "string",
    env: "TRAINFLEET_METRICS_LISTEN",
    help: "host:port to serve Prometheus metrics on at /metrics, e.g. 0.0.0.0:8080. Default: not served.",
  },
} as const satisfies FlagTable;

const jobFlags = {
  "default-job-image": {
    kind: "string",
    env: "TRAINFLEET_DEFAULT_JOB_IMAGE",
    help: "The image of a TrainingJob that leaves spec.image out (e.g. registry.example.com/team/trainfleet:0.1.0, as `npm run image` pushes it); the chart passes its jobImage value. A job keeps the image its pods run while any is left. Default: none, such a job fails naming spec.image.",
  },
} as const satisfies FlagTable;

// An image reference as the container runtime parses it (the distribution project's grammar):
// [host[:port]/]path[:tag][@digest], path components in lower case.
const pathComponent = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const hostComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const imageReference = new RegExp(
  `^(?:(?:${hostComponent}(?:\\.${hostComponent})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?/)?` +
    `${pathComponent}(?:/${pathComponent})*(?::[\\w][\\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`,
);

/** --default-job-image, checked as an image reference; undefined when not given. */
export function defaultJobImageFromFlags(values: Record<string, FlagValue>): string | undefined {
  const value = values["default-job-image"];
  if (typeof value !== "string" || value === "") return undefined;
  if (!imageReference.test(value))
    throw new UsageError(
      `--default-job-image: "${value}" is not an image reference; give [registry/]repository[:tag][@digest] in lower case, e.g. registry.example.com/team/trainfleet:0.1.0`,
    );
  return value;
}

/** The Lease's namespace, name and timing, as the flags and the pod say; undefined without --leader-elect. */
export interface LeaderElectionFlags {
  namespace: string;
  name: string;
  timing: { leaseDurationSeconds: number; renewDeadlineMs: number; retryPeriodMs: number };
  /** The identity's prefix: the pod's name ($POD_NAME, else the host name, which is the pod's name in a pod). */
  podName: string;
}

function podNamespace(env: Readonly<Record<string, string | undefined>>, namespaceFile: string): string | undefined {
  if (env["POD_NAMESPACE"]) return env["POD_NAMESPACE"];
  try {
    return readFileSync(namespaceFile, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function leaderElectionFromFlags(
  values: Record<string, FlagValue>,
  env: Readonly<Record<string, string | undefined>>,
  namespaceFile = join(serviceAccountDir, "namespace"),
): LeaderElectionFlags | undefined {
  if (values["leader-elect"] !== true) return undefined;
  const flagNamespace = values["leader-election-namespace"];
  const namespace = typeof flagNamespace === "string" && flagNamespace !== "" ? flagNamespace : podNamespace(env, namespaceFile);
  if (namespace === undefined)
    throw new UsageError(
      `--leader-elect: no namespace for the Lease: pass --leader-election-namespace NS (in a pod it defaults to the pod's namespace, from $POD_NAMESPACE or ${namespaceFile}, and neither is here)`,
    );
  if (!dnsLabel.test(namespace))
    throw new UsageError(
      `--leader-election-namespace: "${namespace}" is not a namespace name (at most 63 lower-case letters, digits and '-')`,
    );
  const name = values["leader-election-id"] as string;
  if (name.length > 253 || !dnsSubdomain.test(name))
    throw new UsageError(`--leader-election-id: "${name}" is not a Lease name (a DNS subdomain: lower-case letters, digits, '-' and '.')`);
  const leaseDurationSeconds = values["leader-election-lease-duration"] as number;
  const renewDeadline = values["leader-election-renew-deadline"] as number;
  const retryPeriod = values["leader-election-retry-period"] as number;
  if (!(retryPeriod > 0)) throw new UsageError(`--leader-election-retry-period: must be positive, got ${retryPeriod}`);
  if (!(renewDeadline < leaseDurationSeconds))
    throw new UsageError(
      `--leader-election-renew-deadline (${renewDeadline} s) must be shorter than --leader-election-lease-duration (${leaseDurationSeconds} s): a leader must stop before a standby may take over`,
    );
  if (!(renewDeadline > 1.2 * retryPeriod))
    throw new UsageError(
      `--leader-election-renew-deadline (${renewDeadline} s) must be longer than 1.2 x --leader-election-retry-period (${retryPeriod} s): a leader must get to renew at least once`,
    );
  return {
    namespace,
    name,
    timing: { leaseDurationSeconds, renewDeadlineMs: renewDeadline * 1000, retryPeriodMs: retryPeriod * 1000 },
    podName: env["POD_NAME"] || hostname(),
  };
}

/** The listen address of --health-listen or --metrics-listen, checked; undefined when not given. */
function listenFlag(values: Record<string, FlagValue>, flag: keyof typeof serverFlags): string | undefined {
  const value = values[flag];
  if (typeof value !== "string" || value === "") return undefined;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]*):(\d{1,5})$/.exec(value);
  if (match === null || Number(match[2]) > 65535)
    throw new UsageError(
      `--${flag}: "${value}" is not host:port (e.g. 0.0.0.0:8081, or :8081 for every interface; port 0 picks a free one)`,
    );
  return value;
}

export const operatorCommand: Command = {
  name: "operator",
  usage:
    "trainfleet operator [--namespaces NS,...] [--default-job-image IMAGE] [--gang-pod-groups volcano,coscheduling] [--kueue] [--operator-namespace NS --operator-pod-labels K=V,...] [--leader-elect [--leader-election-namespace NS] [--leader-election-id NAME]] [--health-listen HOST:PORT] [--metrics-listen HOST:PORT]",
  summary:
    "Runs the Kubernetes operator: for each TrainingJob it creates the coordinator (and its Service), the parameter-server shards and the workers as pods, scales workers without restarting the others, applies the run policy, and keeps the job's status and conditions as the coordinator reports them. It finds its cluster as kubectl does (in a pod: its service account). With --leader-elect, several replicas run and only the holder of a Lease reconciles; a leader that loses it exits 1.",
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
    kueue: {
      kind: "boolean",
      default: "false",
      env: "TRAINFLEET_KUEUE",
      help: "Kueue admits the TrainingJobs that name a queue (spec.scheduling.queueName): each gets a kueue.x-k8s.io/v1beta1 Workload, and its pods are made once Kueue admits it, on the nodes of the ResourceFlavors it assigned. Kueue must be installed. Off: such a job's pods only carry the kueue.x-k8s.io/queue-name label.",
    },
    "status-poll-ms": {
      kind: "integer",
      min: 100,
      default: "5000",
      env: "TRAINFLEET_STATUS_POLL_MS",
      help: "How often a running job's coordinator is asked for its status.",
    },
    ...jobFlags,
    ...operatorPeerFlags,
    ...leaderElectionFlags,
    ...serverFlags,
    kubeconfig: kubeFlags.kubeconfig!,
    context: kubeFlags.context!,
    ...commonFlags,
  },
  async run({ values, logger, signal, env }) {
    const apis = commaList(values["gang-pod-groups"]);
    const unknown = apis.find((api) => !podGroupApis.includes(api as PodGroupApi));
    if (unknown !== undefined) throw new UsageError(`--gang-pod-groups: unknown API "${unknown}"; use ${podGroupApis.join(" or ")}`);
    const defaultJobImage = defaultJobImageFromFlags(values);
    const election = leaderElectionFromFlags(values, env);
    const healthListen = listenFlag(values, "health-listen");
    const metricsListen = listenFlag(values, "metrics-listen");
    if (healthListen !== undefined && healthListen === metricsListen && !healthListen.endsWith(":0"))
      throw new UsageError(`--health-listen and --metrics-listen are both ${healthListen}: give them different ports`);
    // client-node is loaded by this role only: the others start faster without it.
    const { Operator, defaultOperatorPeer, leaderIdentity } = await import("@trainfleet/k8s");
    const operatorPeer = operatorPeerFromFlags(values, defaultOperatorPeer.podLabels);
    const { config, server, context } = await connect(values, env);
    logger.info({ server, context }, "connecting to the API server");
    const operator = await Operator.start({
      kubeConfig: config,
      logger,
      namespaces: commaList(values.namespaces),
      podGroupApis: apis as PodGroupApi[],
      kueue: values.kueue === true,
      statusPollMs: values["status-poll-ms"] as number,
      ...(defaultJobImage === undefined ? {} : { defaultJobImage }),
      ...(operatorPeer === undefined ? {} : { operatorPeer }),
      ...(election === undefined
        ? {}
        : {
            leaderElection: {
              namespace: election.namespace,
              name: election.name,
              identity: leaderIdentity(election.podName),
              timing: election.timing,
            },
          }),
      ...(healthListen === undefined ? {} : { healthListen }),
      ...(metricsListen === undefined ? {} : { metricsListen }),
    });
    let onAbort = () => {};
    const stopped = new Promise<undefined>((resolve) => {
      onAbort = () => resolve(undefined);
      if (signal.aborted) resolve(undefined);
      else signal.addEventListener("abort", onAbort, { once: true });
    });
    const failure = await Promise.race([stopped, operator.failed()]);
    signal.removeEventListener("abort", onAbort);
    await operator.stop();
    // Lost the Lease: exit 1 (main prints why), and the Deployment starts this pod again as a standby.
    if (failure !== undefined) throw failure;
    return 0;
  },
};
