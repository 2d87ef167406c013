/**
 * The operator's credentials for a job, against the in-process test API server with the real
 * client-node: the job's CA in its own Secret, a Secret per pod holding a certificate that CA
 * issued for the pod's identity (checked with Node's X.509), the job's tokens, which the operator
 * itself uses to read the status, a NetworkPolicy, a scale-up's new worker getting its own, all
 * owned by the job and gone with it; every call within the operator's RBAC. A Secret of one of
 * those names that the job did not make is refused, not used.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { V1Secret } from "@kubernetes/client-node";
import { NetworkingV1Api } from "@kubernetes/client-node";
import { rbacResource } from "@trainfleet/testing/k8s/kube-api-server/request-log";
import { namespace, OperatorHarness, operatorUser, podsOf } from "@trainfleet/testing/k8s/operator/operator-harness";
import { allows, operatorRules } from "@trainfleet/testing/k8s/operator-permissions";
import { afterEach, describe, expect, it } from "vitest";
import { group, plural, version } from "../src/names.js";

let harness: OperatorHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const text = (secret: V1Secret, key: string) => Buffer.from(secret.data![key]!, "base64").toString("utf8");

async function secretsOf(h: OperatorHarness, job: string): Promise<Map<string, V1Secret>> {
  const list = await h.core.listNamespacedSecret({ namespace, labelSelector: `trainfleet.dev/job-name=${job}` });
  return new Map(list.items.map((secret) => [secret.metadata!.name!, secret]));
}

/** The pod's Secret holds the job's CA and a certificate that CA issued for `identity`, with the key that matches it. */
function expectIssuedFor(secret: V1Secret, caPem: string, identity: string): void {
  const name = secret.metadata!.name!;
  expect(Object.keys(secret.data!).sort(), name).toEqual(["ca.pem", "tls.crt", "tls.key"]);
  expect(text(secret, "ca.pem"), name).toBe(caPem);
  const certificate = new X509Certificate(text(secret, "tls.crt"));
  expect(certificate.verify(new X509Certificate(caPem).publicKey), `${name} is signed by the job's CA`).toBe(true);
  expect(certificate.subjectAltName, name).toBe(`URI:${identity}`);
  expect(certificate.checkPrivateKey(createPrivateKey(text(secret, "tls.key"))), `${name}'s key`).toBe(true);
}

function expectOnlyPermittedCalls(h: OperatorHarness): void {
  const rules = operatorRules([]);
  for (const entry of h.server.requests.entries({ user: operatorUser }).filter((request) => request.verb !== undefined)) {
    const request = { apiGroup: entry.apiGroup ?? "", resource: rbacResource(entry), verb: entry.verb! };
    expect(allows(rules, request), `${entry.method} ${entry.path} (${request.verb} ${request.resource})`).toBe(true);
  }
}

describe("the operator's credentials for a job (in-process test API server)", () => {
  it("makes the job's CA, a Secret per pod issued for its identity, the tokens it reads the status with and a NetworkPolicy; a scale-up's worker gets its own; all go with the job", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    await h.submit("secure", { workers: { replicas: 2 }, parameterServers: { replicas: 1 } });
    await h.waitForPods("secure", podsOf("secure", 1, 2));
    const job = await h.job("secure");
    const secrets = await secretsOf(h, "secure");
    expect([...secrets.keys()].sort()).toEqual([
      "secure-coordinator-tls",
      "secure-ps-0-tls",
      "secure-tls-ca",
      "secure-tokens",
      "secure-worker-0-tls",
      "secure-worker-1-tls",
    ]);
    for (const secret of secrets.values())
      expect(secret.metadata!.ownerReferences).toMatchObject([{ kind: "TrainingJob", uid: job.metadata.uid }]);
    const ca = secrets.get("secure-tls-ca")!;
    const caPem = text(ca, "ca.crt");
    expect(new X509Certificate(caPem).ca).toBe(true);
    expectIssuedFor(secrets.get("secure-coordinator-tls")!, caPem, "spiffe://trainfleet/job/secure/coordinator/coordinator");
    expectIssuedFor(secrets.get("secure-ps-0-tls")!, caPem, "spiffe://trainfleet/job/secure/parameter-server/ps-0");
    for (const rank of [0, 1])
      expectIssuedFor(secrets.get(`secure-worker-${rank}-tls`)!, caPem, `spiffe://trainfleet/job/secure/worker/secure-worker-${rank}`);
    const tokens = secrets.get("secure-tokens")!;
    expect(Object.keys(tokens.data!).sort()).toEqual(["control", "read"]);
    for (const key of ["read", "control"]) expect(text(tokens, key)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(text(tokens, "read")).not.toBe(text(tokens, "control"));

    const policies = await h.config.makeApiClient(NetworkingV1Api).listNamespacedNetworkPolicy({ namespace });
    expect(policies.items.map((policy) => [policy.metadata!.name, policy.metadata!.ownerReferences?.[0]?.uid])).toEqual([
      ["secure-network", job.metadata.uid],
    ]);

    // The status API now requires the job's read token: the job is Running only if the operator sends it.
    const coordinator = await h.requireTokens("secure");
    await h.kubelet.runAll();
    coordinator.training(2, 5);
    await h.waitForCondition("secure", "Running", "True", "Training");

    // Scaling up: the new worker's Secret comes from the same CA, which is not made again.
    await h.scale("secure", 3);
    await h.waitForPods("secure", podsOf("secure", 1, 3));
    const scaled = await secretsOf(h, "secure");
    expect(scaled.size).toBe(7);
    expect(text(scaled.get("secure-tls-ca")!, "ca.crt")).toBe(caPem);
    expectIssuedFor(scaled.get("secure-worker-2-tls")!, caPem, "spiffe://trainfleet/job/secure/worker/secure-worker-2");
    // Nothing of the keys or tokens reaches the operator's log.
    const log = h.logLines.join("\n");
    expect(log).not.toContain("PRIVATE KEY");
    expect(log).not.toContain(text(tokens, "read"));
    expectOnlyPermittedCalls(h);

    // Deleting the job deletes its Secrets (by owner reference).
    await h.custom.deleteNamespacedCustomObject({ group, version, namespace, plural, name: "secure" });
    await h.waitFor("the job's Secrets to go", async () => (await secretsOf(h, "secure")).size === 0);
  });

  it("refuses a Secret of the job's names that the job did not make: nothing is created, and the log names the Secret", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    const planted = "-----BEGIN CERTIFICATE-----\nnot the job's\n-----END CERTIFICATE-----\n";
    await h.core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: "taken-coordinator-tls" }, stringData: { "ca.pem": planted } },
    });
    await h.submit("taken", { workers: { replicas: 1 }, parameterServers: { replicas: 1 } });
    await h.waitFor("the refusal in the operator's log", async () =>
      h.logLines.some((line) => line.includes("Secret training/taken-coordinator-tls exists but is not TrainingJob taken's")),
    );
    expect(await h.podNames("taken")).toEqual([]);
  });
});
