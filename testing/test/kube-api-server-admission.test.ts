/**
 * Admission checks of the in-process Kubernetes API server (admission.ts), driven by the real
 * @kubernetes/client-node 1.4.0: a refused create answers the Status a real server sends for Pod
 * Security, a ResourceQuota, a missing PriorityClass and a webhook's denial (code, reason,
 * message, details), before storage as a real server's admission runs; what is admitted is stored.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { ApiException, CoreV1Api } from "@kubernetes/client-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { KubeApiServer } from "../src/k8s/kube-api-server/index.js";
import {
  forbidden,
  missingPriorityClass,
  podSecurityViolation,
  quotaExceeded,
  startKubeApiServer,
  webhookDenied,
} from "../src/k8s/kube-api-server/index.js";

const namespace = "training";
let server: KubeApiServer;
let core: CoreV1Api;

beforeEach(async () => {
  server = await startKubeApiServer();
  core = server.kubeConfig(namespace).makeApiClient(CoreV1Api);
});

afterEach(async () => {
  await server.close();
});

const pod = (name: string, spec: Partial<V1Pod["spec"]> = {}): V1Pod => ({
  metadata: { name },
  spec: { containers: [{ name: "trainfleet", image: "trainfleet:test" }], ...spec },
});

/** The refusal: the HTTP code and the Status body, as client-node hands them over. */
async function refusal(call: Promise<unknown>): Promise<{ code: number; status: Record<string, unknown> }> {
  const error: unknown = await call.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ApiException);
  const exception = error as ApiException<string>;
  return { code: exception.code, status: JSON.parse(exception.body) as Record<string, unknown> };
}

describe("admission checks of the in-process API server", { timeout: 10_000 }, () => {
  it("refuses a pod as Pod Security does: 403 Forbidden with the real message and details; nothing is stored", async () => {
    const violation = 'runAsNonRoot != true (pod or container "trainfleet" must set securityContext.runAsNonRoot=true)';
    server.addAdmissionCheck(({ resource, name }) => (resource.plural === "pods" ? podSecurityViolation(name, [violation]) : undefined));
    expect(await refusal(core.createNamespacedPod({ namespace, body: pod("worker-0") }))).toEqual({
      code: 403,
      status: {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: `pods "worker-0" is forbidden: violates PodSecurity "restricted:latest": ${violation}`,
        reason: "Forbidden",
        details: { name: "worker-0", kind: "pods" },
        code: 403,
      },
    });
    expect((await core.listNamespacedPod({ namespace })).items).toEqual([]);
    expect(server.requests.entries({ verb: "create", resource: "pods" }).map((entry) => entry.status)).toEqual([403]);
    // Other resources are not the check's.
    await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: "settings" } } });
  });

  it("words a quota, a missing PriorityClass and a webhook's denial as the real server; a check sees the object, generated name included", async () => {
    const seen: string[] = [];
    server.addAdmissionCheck(({ resource, name, object }) => {
      seen.push(name);
      const spec = object["spec"] as { priorityClassName?: string };
      if (spec.priorityClassName !== undefined) return missingPriorityClass(name, spec.priorityClassName);
      if (name === "big") return quotaExceeded(resource, name, "compute", { requested: ["cpu=1"], used: ["cpu=2"], limited: ["cpu=2"] });
      if (name.startsWith("unlabelled-"))
        return webhookDenied("validation.gatekeeper.sh", '[require-team] you must provide labels: {"team"}');
      return undefined;
    });
    const messages = await Promise.all(
      [pod("high", { priorityClassName: "high" }), pod("big"), { ...pod(""), metadata: { generateName: "unlabelled-" } }].map(
        async (body) => (await refusal(core.createNamespacedPod({ namespace, body }))).status,
      ),
    );
    expect(messages.map(({ code, reason, message }) => [code, reason, message])).toEqual([
      [403, "Forbidden", 'pods "high" is forbidden: no PriorityClass with name high was found'],
      [403, "Forbidden", 'pods "big" is forbidden: exceeded quota: compute, requested: cpu=1, used: cpu=2, limited: cpu=2'],
      [
        403,
        "Forbidden",
        'admission webhook "validation.gatekeeper.sh" denied the request: [require-team] you must provide labels: {"team"}',
      ],
    ]);
    expect(seen[2]).toMatch(/^unlabelled-[a-z0-9]{5}$/);
  });

  it("refuses before the AlreadyExists check, as admission runs before storage; a removed check refuses nothing", async () => {
    await core.createNamespacedPod({ namespace, body: pod("worker-0") });
    const check = server.addAdmissionCheck(({ resource, name }) => forbidden(resource, name, "not today"));
    expect((await refusal(core.createNamespacedPod({ namespace, body: pod("worker-0") }))).status).toMatchObject({
      code: 403,
      message: 'pods "worker-0" is forbidden: not today',
    });
    check.remove();
    expect((await refusal(core.createNamespacedPod({ namespace, body: pod("worker-0") }))).code).toBe(409);
    await core.createNamespacedPod({ namespace, body: pod("worker-1") });
  });
});
