/**
 * The operator against the in-process Kubernetes API server (test/src/kube-api-server: the REST
 * and watch protocol, with 409s, 410 re-lists, dropped watches and injected 500s), with the real
 * @kubernetes/client-node informers and clients. No real kube-apiserver can run here: pods do not
 * run either, so a FakeKubelet writes their status, and each job's coordinator status API is the
 * coordinator's real HTTP server serving a status the test sets.
 */
import { Pod, Service } from "kubernetes-models/v1";
import { JobPhase } from "@trainfleet/proto";
import { labels } from "@trainfleet/operator";
import type { TrainingJob } from "@trainfleet/operator";
import { afterEach, describe, expect, it } from "vitest";
import { rbacResource, volcanoPodGroups, defaultResources } from "./src/kube-api-server/index.js";
import { allows, operatorRules } from "./src/operator-permissions.js";
import { OperatorHarness, coschedulingPodGroups, namespace, operatorUser, podsOf } from "./src/operator/operator-harness.js";

let harness: OperatorHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const uidsOf = (pods: { metadata?: { name?: string; uid?: string } }[]) => Object.fromEntries(pods.map((pod) => [pod.metadata!.name!, pod.metadata!.uid!]));
const condition = (job: TrainingJob, type: string) => job.status?.conditions?.find((candidate) => candidate.type === type);

/** Every request the operator made is one its RBAC (k8s/operator-permissions.json) grants; patches say their Content-Type. */
function expectOnlyPermittedCalls(h: OperatorHarness, podGroups: string[] = []): void {
  const rules = operatorRules(podGroups);
  const operatorRequests = h.server.requests.entries({ user: operatorUser }).filter((entry) => entry.verb !== undefined);
  expect(operatorRequests.length).toBeGreaterThan(0);
  for (const entry of operatorRequests) {
    const request = { apiGroup: entry.apiGroup ?? "", resource: rbacResource(entry), verb: entry.verb! };
    expect(allows(rules, request), `${entry.method} ${entry.path} (${request.verb} ${request.resource})`).toBe(true);
    if (entry.method === "PATCH") expect(entry.contentType).toBe("application/merge-patch+json");
  }
}

describe("operator against the in-process test API server (no real kube-apiserver can run here)", () => {
  it("creates the coordinator with its Service, the shards and the workers, owned and labelled, and reports the coordinator's status", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    const coordinator = await h.submit("mnist", { workers: { replicas: 2 }, parameterServers: { replicas: 2 } });
    const pods = await h.waitForPods("mnist", podsOf("mnist", 2, 2));
    const job = await h.job("mnist");
    for (const pod of pods) {
      expect(pod.metadata!.ownerReferences).toEqual([expect.objectContaining({ kind: "TrainingJob", name: "mnist", uid: job.metadata.uid, controller: true })]);
      expect(pod.metadata!.labels![labels.jobName]).toBe("mnist");
      expect(pod.spec!.restartPolicy).toBe("Never");
      expect(pod.spec!.containers[0]!.image).toBe("trainfleet:test");
      // Every manifest the operator makes is a valid Pod (kubernetes-models' schema).
      expect(() => new Pod(JSON.parse(JSON.stringify(pod)) as object).validate()).not.toThrow();
    }
    const byName = Object.fromEntries(pods.map((pod) => [pod.metadata!.name!, pod]));
    expect(byName["mnist-ps-1"]!.metadata!.labels).toMatchObject({ [labels.role]: "parameter-server", [labels.index]: "1" });
    expect(byName["mnist-worker-0"]!.spec!.containers[0]!.args).toEqual(["worker"]);
    const specJson = byName["mnist-coordinator"]!.spec!.containers[0]!.env!.find((env) => env.name === "TRAINFLEET_SPEC")!.value!;
    expect(JSON.parse(specJson)).toMatchObject({ jobId: "mnist", workers: { replicas: 2, maxWorkers: 1024 }, parameterServers: { shards: 2 } });
    const service = await h.core.readNamespacedService({ name: "mnist-coordinator", namespace });
    expect(service.spec!.ports!.map((port) => port.port)).toEqual([7070, 7080]);
    expect(() => new Service(JSON.parse(JSON.stringify(service)) as object).validate()).not.toThrow();

    await h.kubelet.runAll();
    coordinator.training(2, 7, { loss: 0.42, samplesPerSecond: 1234, lastCheckpointVersion: 5, lastCheckpointUnixMs: 1_700_000_000_000n });
    const running = await h.waitForCondition("mnist", "Running", "True", "Training");
    expect(running.status).toMatchObject({
      phase: "Running",
      replicas: 2,
      readyReplicas: 2,
      selector: `${labels.jobName}=mnist,${labels.role}=worker`,
      epoch: 1,
      step: 7,
      loss: 0.42,
      samplesPerSecond: 1234,
      lastCheckpoint: { step: 5, time: "2023-11-14T22:13:20Z" },
      coordinatorEndpoint: "mnist-coordinator.training.svc:7080",
    });
    expect(running.status!.startTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(condition(running, "Created")).toMatchObject({ status: "True" });
    expect(condition(running, "Admitted")).toMatchObject({ status: "True" });

    // Status is patched only when it changes: many reconciles later (one per 100 ms poll), no new patch.
    const patches = () => h.server.requests.entries({ verb: "patch", resource: "trainingjobs", subresource: "status" }).length;
    const before = patches();
    const reconciles = h.operator!.reconciles;
    await h.waitFor("5 more reconciles", async () => h.operator!.reconciles >= reconciles + 5);
    expect(patches()).toBe(before);
    coordinator.training(2, 8);
    await h.waitFor("step 8 in the status", async () => (await h.job("mnist")).status?.step === 8);
    expect(patches()).toBe(before + 1);

    const reasons = (await h.events("mnist")).map((event) => event.reason);
    expect(reasons).toEqual(expect.arrayContaining(["TrainingJobCreated", "Admitted", "Training"]));
    expect(reasons.filter((reason) => reason === "Training")).toHaveLength(1);
    expectOnlyPermittedCalls(h);
  });
});
