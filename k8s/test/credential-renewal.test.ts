/**
 * The operator renews its pods' certificates (issue 14, rotation). Reconcile asks for the
 * credentials of every pod that stays (not those it creates, none in plaintext); against the
 * in-process test API server with the real client-node, a pod's Secret whose certificate is
 * past 2/3 of its life gets a new certificate and key of the job's CA for the same identity, in
 * place (the pod mounts the whole Secret, no subPath: the kubelet refreshes its files), while
 * the Secrets of fresh certificates are left as they are, and every call stays within the RBAC.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { V1Secret } from "@kubernetes/client-node";
import type { JobAuthority } from "@trainfleet/runtime";
import { issueCertificate } from "@trainfleet/runtime";
import { rbacResource } from "@trainfleet/testing/k8s/kube-api-server/request-log";
import { namespace, OperatorHarness, operatorUser, podsOf } from "@trainfleet/testing/k8s/operator/operator-harness";
import { allows, operatorRules } from "@trainfleet/testing/k8s/operator-permissions";
import { afterEach, describe, expect, it } from "vitest";
import { reconcile } from "../src/reconcile.js";
import { observed, reconcileOptions, runningPods, trainingJob } from "./builders.js";

let harness: OperatorHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe("reconcile: the credentials to keep renewed", () => {
  it("are those of every pod that stays, with the identities of their certificates; none for pods created now", () => {
    const job = trainingJob("ns", "mnist").replicas(3).shards(1).running().status({ replicas: 2, trainingReplicas: 2 });
    const plan = reconcile(
      observed(job)
        .pods(...runningPods(job, 1, 2))
        .service()
        .obj(),
      reconcileOptions(),
    );
    expect(plan.renewSecrets).toEqual([
      { secretName: "mnist-coordinator-tls", identity: { jobId: "mnist", role: "coordinator", name: "coordinator" } },
      { secretName: "mnist-ps-0-tls", identity: { jobId: "mnist", role: "parameter-server", name: "ps-0" } },
      { secretName: "mnist-worker-0-tls", identity: { jobId: "mnist", role: "worker", name: "mnist-worker-0" } },
      { secretName: "mnist-worker-1-tls", identity: { jobId: "mnist", role: "worker", name: "mnist-worker-1" } },
    ]);
    // The scale-up's new worker is made with a fresh Secret instead.
    expect(plan.secrets.members.map((request) => request.secretName)).toEqual(["mnist-worker-2-tls"]);
  });

  it("are none in plaintext (spec.security.insecure)", () => {
    const job = trainingJob("ns", "mnist")
      .replicas(1)
      .shards(1)
      .running()
      .spec({ security: { insecure: true } });
    const plan = reconcile(
      observed(job)
        .pods(...runningPods(job, 1, 1))
        .service()
        .obj(),
      reconcileOptions(),
    );
    expect(plan.renewSecrets).toEqual([]);
  });
});

const text = (secret: V1Secret, key: string) => Buffer.from(secret.data![key]!, "base64").toString("utf8");

describe("the operator's renewal of a pod's Secret (in-process test API server)", () => {
  it("re-issues a certificate past 2/3 of its life in place, for the same identity, and leaves fresh ones alone", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    await h.submit("renew", { workers: { replicas: 1 }, parameterServers: { replicas: 1 } });
    const pods = await h.waitForPods("renew", podsOf("renew", 1, 1));
    // Whole-Secret mounts: the kubelet swaps the files of such a volume when the Secret changes (not a subPath's).
    for (const pod of pods) for (const mount of pod.spec!.containers[0]!.volumeMounts!) expect(mount.subPath).toBeUndefined();
    const read = (name: string) => h.core.readNamespacedSecret({ name, namespace });
    const caSecret = await read("renew-tls-ca");
    const authority: JobAuthority = { jobId: "renew", certificatePem: text(caSecret, "ca.crt"), keyPem: text(caSecret, "ca.key") };

    // The worker's Secret now holds a certificate issued 20 of its 24 hours ago: due.
    await h.stopOperator();
    const identity = { jobId: "renew", role: "worker" as const, name: "renew-worker-0" };
    const old = await issueCertificate(authority, identity, { now: new Date(Date.now() - 20 * 3_600_000) });
    const worker = await read("renew-worker-0-tls");
    await h.core.replaceNamespacedSecret({
      name: "renew-worker-0-tls",
      namespace,
      body: {
        ...worker,
        data: {
          ...worker.data,
          "tls.crt": Buffer.from(old.certificatePem).toString("base64"),
          "tls.key": Buffer.from(old.keyPem).toString("base64"),
        },
      },
    });
    const fresh = await Promise.all(["renew-coordinator-tls", "renew-ps-0-tls"].map(read));
    await h.startOperator();

    const renewed = await h.waitFor("the worker's Secret to be renewed", async () => {
      const secret = await read("renew-worker-0-tls");
      return text(secret, "tls.crt") !== old.certificatePem && secret;
    });
    const certificate = new X509Certificate(text(renewed, "tls.crt"));
    expect(certificate.verify(new X509Certificate(authority.certificatePem).publicKey)).toBe(true);
    expect(certificate.subjectAltName).toBe("URI:spiffe://trainfleet/job/renew/worker/renew-worker-0");
    expect(certificate.checkPrivateKey(createPrivateKey(text(renewed, "tls.key")))).toBe(true);
    expect(Math.round((Date.parse(certificate.validTo) - Date.now()) / 3_600_000)).toBe(24);
    expect(text(renewed, "ca.pem")).toBe(authority.certificatePem);
    // In place: the same Secret, owned by the job as before.
    expect(renewed.metadata!.uid).toBe(worker.metadata!.uid);
    expect(renewed.metadata!.ownerReferences).toEqual(worker.metadata!.ownerReferences);
    // Nothing of the keys reaches the operator's log.
    expect(h.logLines.join("\n")).not.toContain("PRIVATE KEY");

    // A reconcile or more later, the fresh Secrets are as they were.
    const reconciled = h.operator!.reconciles;
    await h.waitFor("two more reconciles", async () => h.operator!.reconciles >= reconciled + 2);
    for (const before of fresh)
      expect((await read(before.metadata!.name!)).metadata!.resourceVersion).toBe(before.metadata!.resourceVersion);
    const rules = operatorRules([]);
    for (const entry of h.server.requests.entries({ user: operatorUser }).filter((request) => request.verb !== undefined)) {
      const request = { apiGroup: entry.apiGroup ?? "", resource: rbacResource(entry), verb: entry.verb! };
      expect(allows(rules, request), `${entry.method} ${entry.path} (${request.verb} ${request.resource})`).toBe(true);
    }
  });
});
