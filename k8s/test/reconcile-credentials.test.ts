/**
 * Table tests of what reconcile() plans for a job's security (issue 14): the Secrets it asks the
 * operator to make (the job's tokens with its coordinator, each created pod's TLS credentials for
 * its identity), how each pod mounts them (read-only, 0440) and which env points the process at
 * them, and the job's NetworkPolicy; for a new job and for a scale-up. Every object is checked
 * by kubernetes-models, as the API server would.
 */
import type { V1NetworkPolicy, V1Pod } from "@kubernetes/client-node";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { Pod } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { reconcile } from "../src/reconcile.js";
import { observed, reconcileOptions, runningPods, trainingJob } from "./builders.js";

const tlsEnv = [
  { name: "TRAINFLEET_TLS_CA", value: "/var/run/trainfleet/tls/ca.pem" },
  { name: "TRAINFLEET_TLS_CERT", value: "/var/run/trainfleet/tls/tls.crt" },
  { name: "TRAINFLEET_TLS_KEY", value: "/var/run/trainfleet/tls/tls.key" },
];
const tlsMount = { name: "trainfleet-tls", mountPath: "/var/run/trainfleet/tls", readOnly: true };
const tlsVolume = (secretName: string) => ({ name: "trainfleet-tls", secret: { secretName, defaultMode: 0o440 } });

const podsOf = (create: readonly { kind?: string }[]) => create.filter((object) => object.kind === "Pod") as V1Pod[];
const envOf = (pod: V1Pod) => pod.spec!.containers[0]!.env ?? [];
const validPod = (pod: V1Pod) => expect(() => new Pod(JSON.parse(JSON.stringify(pod)) as never).validate()).not.toThrow();

describe("reconcile: the credentials and NetworkPolicy of a job", () => {
  it("a new job asks for its tokens and one Secret per pod, for the pod's own identity", () => {
    const plan = reconcile(observed(trainingJob("ns", "mnist").replicas(2).shards(1)).obj(), reconcileOptions());
    expect(plan.secrets).toEqual({
      tokens: true,
      members: [
        { secretName: "mnist-coordinator-tls", identity: { jobId: "mnist", role: "coordinator", name: "coordinator" } },
        { secretName: "mnist-ps-0-tls", identity: { jobId: "mnist", role: "parameter-server", name: "ps-0" } },
        { secretName: "mnist-worker-0-tls", identity: { jobId: "mnist", role: "worker", name: "mnist-worker-0" } },
        { secretName: "mnist-worker-1-tls", identity: { jobId: "mnist", role: "worker", name: "mnist-worker-1" } },
      ],
    });
  });

  it("each pod mounts its own Secret read-only and is pointed at the files; the coordinator also gets its token files", () => {
    const plan = reconcile(observed(trainingJob("ns", "mnist").replicas(1).shards(1)).obj(), reconcileOptions());
    const [coordinator, shard, worker] = podsOf(plan.create);
    for (const pod of [coordinator!, shard!, worker!]) {
      const name = pod.metadata!.name!;
      expect(pod.spec!.volumes).toContainEqual(tlsVolume(`${name}-tls`));
      expect(pod.spec!.containers[0]!.volumeMounts).toContainEqual(tlsMount);
      expect(envOf(pod).filter((variable) => variable.name.startsWith("TRAINFLEET_TLS_"))).toEqual(tlsEnv);
      // The files are the group's (fsGroup), the process runs as that user.
      expect(pod.spec!.securityContext).toMatchObject({ fsGroup: 65532, runAsUser: 65532 });
      expect(envOf(pod).some((variable) => variable.name === "TRAINFLEET_INSECURE")).toBe(false);
      validPod(pod);
    }
    expect(coordinator!.spec!.volumes).toContainEqual({
      name: "trainfleet-tokens",
      secret: { secretName: "mnist-tokens", defaultMode: 0o440 },
    });
    expect(envOf(coordinator!).filter((variable) => variable.name.endsWith("_TOKEN_FILE"))).toEqual([
      { name: "TRAINFLEET_READ_TOKEN_FILE", value: "/var/run/trainfleet/tokens/read" },
      { name: "TRAINFLEET_CONTROL_TOKEN_FILE", value: "/var/run/trainfleet/tokens/control" },
    ]);
    for (const pod of [shard!, worker!]) expect(JSON.stringify(pod)).not.toContain("tokens");
    // A worker reports its pod name as its host: the name its certificate is issued for.
    expect(envOf(worker!)).toContainEqual({ name: "TRAINFLEET_HOST", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } });
  });

  it("a colocated worker also gets its shard's certificate (ps-N) and the flags for it", () => {
    const plan = reconcile(observed(trainingJob("ns", "mnist").replicas(2).colocated()).obj(), reconcileOptions());
    expect(plan.secrets.members[2]).toEqual({
      secretName: "mnist-worker-1-tls",
      identity: { jobId: "mnist", role: "worker", name: "mnist-worker-1" },
      colocated: { jobId: "mnist", role: "parameter-server", name: "ps-1" },
    });
    const worker = podsOf(plan.create).find((pod) => pod.metadata!.name === "mnist-worker-1")!;
    expect(envOf(worker)).toEqual(
      expect.arrayContaining([
        { name: "TRAINFLEET_COLOCATED_TLS_CERT", value: "/var/run/trainfleet/tls/colocated-tls.crt" },
        { name: "TRAINFLEET_COLOCATED_TLS_KEY", value: "/var/run/trainfleet/tls/colocated-tls.key" },
      ]),
    );
  });

  it("a scale-up asks only for the new worker's Secret, not the tokens again", () => {
    const job = trainingJob("ns", "mnist").replicas(3).shards(1).running().status({ replicas: 2, trainingReplicas: 2 });
    const plan = reconcile(
      observed(job)
        .pods(...runningPods(job, 1, 2))
        .service()
        .obj(),
      reconcileOptions(),
    );
    expect(plan.secrets).toEqual({
      tokens: false,
      members: [{ secretName: "mnist-worker-2-tls", identity: { jobId: "mnist", role: "worker", name: "mnist-worker-2" } }],
    });
    expect(podsOf(plan.create)[0]!.spec!.volumes).toContainEqual(tlsVolume("mnist-worker-2-tls"));
  });

  it("a job with every pod in place asks for no Secret and makes no NetworkPolicy", () => {
    const job = trainingJob("ns", "mnist").replicas(2).shards(1).running();
    const plan = reconcile(
      observed(job)
        .pods(...runningPods(job, 1, 2))
        .service()
        .obj(),
      reconcileOptions(),
    );
    expect(plan.secrets).toEqual({ tokens: false, members: [] });
    expect(plan.create).toEqual([]);
  });

  it("spec.security.insecure: no TLS Secrets or mounts, TRAINFLEET_INSECURE on every pod, the tokens kept, and an Insecure Warning", () => {
    const plan = reconcile(
      observed(
        trainingJob("ns", "mnist")
          .replicas(1)
          .shards(1)
          .spec({ security: { insecure: true } }),
      ).obj(),
      reconcileOptions(),
    );
    expect(plan.secrets).toEqual({ tokens: true, members: [] });
    const pods = podsOf(plan.create);
    expect(pods.map((pod) => pod.metadata!.name)).toEqual(["mnist-coordinator", "mnist-ps-0", "mnist-worker-0"]);
    for (const pod of pods) {
      expect(envOf(pod)).toContainEqual({ name: "TRAINFLEET_INSECURE", value: "true" });
      expect(envOf(pod).filter((variable) => variable.name.startsWith("TRAINFLEET_TLS_"))).toEqual([]);
      expect(JSON.stringify(pod)).not.toContain("trainfleet-tls");
      validPod(pod);
    }
    expect(pods[0]!.spec!.volumes).toEqual([
      { name: "trainfleet-tmp", emptyDir: { sizeLimit: "1Gi" } },
      { name: "trainfleet-tokens", secret: { secretName: "mnist-tokens", defaultMode: 0o440 } },
    ]);
    expect(plan.events.filter((event) => event.type === "Warning")).toEqual([
      {
        type: "Warning",
        reason: "Insecure",
        message: "spec.security.insecure: the job's pods talk in plaintext, neither encrypted nor authenticated; remove it for mutual TLS",
      },
    ]);
    // The NetworkPolicy still keeps strangers out.
    expect(plan.create.map((object) => object.kind)).toContain("NetworkPolicy");
  });

  it("the NetworkPolicy lets in only the job's own pods on its ports and the operator on the status port", () => {
    const plan = reconcile(
      observed(trainingJob("ns", "mnist")).obj(),
      reconcileOptions({ operatorPeer: { namespace: "trainfleet-system", podLabels: { app: "op" } } }),
    );
    const policy = plan.create.find((object) => object.kind === "NetworkPolicy") as V1NetworkPolicy;
    // As client-node's serializer sends it: its model's `_from` is the API's `from`.
    const json = JSON.parse(JSON.stringify(policy).replaceAll('"_from":', '"from":')) as Record<string, unknown>;
    expect(() => new NetworkPolicy(json as never).validate()).not.toThrow();
    expect(json).toMatchObject({
      metadata: { name: "mnist-network", namespace: "ns", ownerReferences: [{ kind: "TrainingJob", name: "mnist", uid: "uid-mnist" }] },
      spec: {
        podSelector: { matchLabels: { "trainfleet.dev/job-name": "mnist" } },
        policyTypes: ["Ingress"],
        ingress: [
          {
            from: [{ podSelector: { matchLabels: { "trainfleet.dev/job-name": "mnist" } } }],
            ports: [7070, 7080, 7100].map((port) => ({ protocol: "TCP", port })),
          },
          {
            from: [
              {
                namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "trainfleet-system" } },
                podSelector: { matchLabels: { app: "op" } },
              },
            ],
            ports: [{ protocol: "TCP", port: 7080 }],
          },
        ],
      },
    });
  });
});
