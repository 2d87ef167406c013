/**
 * The NetworkPolicy the operator makes for each TrainingJob: its pods take connections on the
 * job's ports only from the job's own pods (the coordinator, shards and workers reach each other)
 * and from the operator's pods (the coordinator's status API, with the read token). Mutual TLS
 * already refuses strangers; this keeps them from reaching the ports at all (issue 14). Egress is
 * left open: pods fetch the user's files from wherever the spec says. The kubelet's probes come
 * from the node, which NetworkPolicies do not block.
 */
import type { V1NetworkPolicy } from "@kubernetes/client-node";
import { labels, managedBy, ports } from "./names.js";
import { ownerReference } from "./owner.js";
import type { TrainingJob } from "./training-job.js";

/** Which pods are the operator's: its labels, and its namespace (any when undefined). */
export interface OperatorPeer {
  namespace?: string | undefined;
  podLabels: Record<string, string>;
}

/** The chart's operator pods (helm/trainfleet/templates/_helpers.tpl selectorLabels and labels), in any namespace. */
export const defaultOperatorPeer: OperatorPeer = {
  podLabels: { "app.kubernetes.io/component": "operator", "app.kubernetes.io/part-of": "trainfleet" },
};

export function jobNetworkPolicyName(job: string): string {
  return `${job}-network`;
}

export function jobNetworkPolicy(job: TrainingJob, operator: OperatorPeer): V1NetworkPolicy {
  const name = job.metadata.name;
  const jobPods = { matchLabels: { [labels.jobName]: name } };
  const tcp = (port: number) => ({ protocol: "TCP", port });
  const operatorNamespace = operator.namespace === undefined ? {} : { matchLabels: { "kubernetes.io/metadata.name": operator.namespace } };
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: {
      name: jobNetworkPolicyName(name),
      namespace: job.metadata.namespace,
      labels: { [labels.managedBy]: managedBy, [labels.jobName]: name },
      ownerReferences: [ownerReference(job)],
    },
    spec: {
      podSelector: jobPods,
      policyTypes: ["Ingress"],
      ingress: [
        // client-node's models call `from` `_from`; its serializer writes `from`.
        {
          _from: [{ podSelector: jobPods }],
          ports: [ports.coordinatorGrpc, ports.coordinatorHttp, ports.parameterServer].map(tcp),
        },
        {
          _from: [{ namespaceSelector: operatorNamespace, podSelector: { matchLabels: { ...operator.podLabels } } }],
          ports: [tcp(ports.coordinatorHttp)],
        },
      ],
    },
  };
}
