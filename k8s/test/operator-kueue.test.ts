/**
 * The operator's Kueue integration (--kueue) against the in-process test API server, with the
 * real client-node, serving Kueue's Workloads and ResourceFlavors. No real Kueue can run here:
 * the test plays Kueue's controllers (testing/src/k8s/kueue/kueue-controller.ts), writing
 * Kueue's objects through the API as Kueue does: it checks each Workload is one Kueue would
 * accept, reserves quota and admits it, says why it does not, evicts it. A queued job gets its
 * Workload and makes no pod until Kueue admits it; its pods go to the flavor's nodes; an
 * eviction stops it and gives the quota back; suspend deactivates the Workload; a finished job
 * finishes it; more workers than admitted queue the job again; without Kueue installed, the
 * job says what to do.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { JobPhase } from "@trainfleet/proto";
import { kueueResources } from "@trainfleet/testing/k8s/kube-api-server/kueue-resources";
import { rbacResource } from "@trainfleet/testing/k8s/kube-api-server/request-log";
import { defaultResources } from "@trainfleet/testing/k8s/kube-api-server/resource-table";
import type { KueueWorkload, PodSet } from "@trainfleet/testing/k8s/kueue/kueue-controller";
import { checkWorkload, KueueController, podRequests } from "@trainfleet/testing/k8s/kueue/kueue-controller";
import { namespace, OperatorHarness, operatorUser, podsOf } from "@trainfleet/testing/k8s/operator/operator-harness";
import { recordingLogger } from "@trainfleet/testing/k8s/operator/polling";
import { allows, operatorRules } from "@trainfleet/testing/k8s/operator-permissions";
import { Pod } from "kubernetes-models/v1";
import { afterEach, describe, expect, it } from "vitest";
import { Operator } from "../src/operator.js";
import type { TrainingJob } from "../src/training-job.js";

let harness: OperatorHarness | undefined;
let operator: Operator | undefined;
afterEach(async () => {
  await operator?.stop();
  operator = undefined;
  await harness?.close();
  harness = undefined;
});

const condition = (job: TrainingJob, type: string) => job.status?.conditions?.find((candidate) => candidate.type === type);
const queue = "team-vision";
const flavorLabels = { "cloud.example.com/accelerator": "a100" };
const gpuToleration = { key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" };
const preempted = "Preempted to accommodate a workload (UID: 42) due to prioritization in the ClusterQueue";

/** The in-process server (with Kueue's objects unless `installed` is false) and an operator started with --kueue. */
async function start(installed = true): Promise<{ h: OperatorHarness; kueue: KueueController }> {
  harness = await OperatorHarness.start({ resources: installed ? [...defaultResources, ...kueueResources] : defaultResources });
  const h = harness;
  await h.stopOperator();
  operator = await Operator.start({
    kubeConfig: h.server.kubeConfig(namespace, operatorUser),
    logger: recordingLogger(h.logLines),
    kueue: true,
    statusPollMs: 100,
    finishGraceMs: 300,
    resyncMs: 2000,
    informerBackoff: { initialMs: 50, maxMs: 400 },
    coordinatorUrl: (job) => h.coordinators.get(job.metadata.name)?.url ?? "http://127.0.0.1:1",
  });
  return { h, kueue: new KueueController(h.config, namespace) };
}

/** The job's one Workload, once there is one (and it is not the `not` one, a deleted predecessor). */
async function workloadOf(h: OperatorHarness, kueue: KueueController, job: string, not?: string): Promise<KueueWorkload> {
  return h.waitFor(`the Workload of ${job}`, async () => {
    const found = (await kueue.workloadsOf(job)).filter((workload) => workload.metadata.uid !== not);
    return found.length === 1 ? found[0] : undefined;
  });
}

/** The job's condition `type` once its message is `message`. */
async function conditionMessage(h: OperatorHarness, job: string, type: string, message: string): Promise<TrainingJob> {
  return h.waitFor(`${job}: ${type} says "${message}"`, async () => {
    const current = await h.job(job);
    return condition(current, type)?.message === message ? current : undefined;
  });
}

/** Every request the operator made is one its RBAC with kueue.enabled grants; patches are merge patches. */
function expectOnlyPermittedCalls(h: OperatorHarness): void {
  const rules = operatorRules([], { kueue: true });
  const requests = h.server.requests.entries({ user: operatorUser }).filter((entry) => entry.verb !== undefined);
  expect(requests.some((entry) => entry.resource === "workloads")).toBe(true);
  for (const entry of requests) {
    const request = { apiGroup: entry.apiGroup ?? "", resource: rbacResource(entry), verb: entry.verb! };
    expect(allows(rules, request), `${entry.method} ${entry.path} (${request.verb} ${request.resource})`).toBe(true);
    if (entry.method === "PATCH") expect(entry.contentType).toBe("application/merge-patch+json");
  }
}

const podSetOf = (workload: KueueWorkload, pod: V1Pod): PodSet =>
  workload.spec.podSets.find((podSet) => podSet.name === pod.metadata!.labels!["trainfleet.dev/role"])!;

/** A job with 1 shard and 2 workers in the queue, admitted on flavor a100, its pods running. */
async function admittedJob(h: OperatorHarness, kueue: KueueController, name: string, spec: Record<string, unknown> = {}) {
  const coordinator = await h.submit(name, {
    workers: { replicas: 2 },
    parameterServers: { replicas: 1 },
    scheduling: { queueName: queue },
    ...spec,
  });
  const workload = await workloadOf(h, kueue, name);
  await kueue.createFlavor("a100", flavorLabels, [gpuToleration]);
  await kueue.admit(workload.metadata.name, "gpu-cluster", "a100");
  await h.waitForPods(name, podsOf(name, 1, 2));
  await h.kubelet.runAll();
  return { coordinator, workload };
}

describe("the operator's Kueue integration (--kueue), against the in-process test API server, Kueue played by the test", () => {
  it("a queued job gets a Workload Kueue accepts, waits with no pods and shows Kueue's words; admitted, its pods are made on the flavor's nodes", async () => {
    const { h, kueue } = await start();
    await h.submit("vision", {
      workers: { replicas: 2, resources: { requests: { cpu: "2", memory: "4Gi" } } },
      parameterServers: { replicas: 1, resources: { requests: { cpu: "1", memory: "2Gi" } } },
      scheduling: { queueName: queue },
    });
    const waiting = await h.waitForCondition("vision", "Suspended", "True", "WaitingForQueue");
    const workload = await workloadOf(h, kueue, "vision");
    const name = workload.metadata.name;
    checkWorkload(workload);
    expect(name).toMatch(/^trainingjob-vision-[0-9a-f]{5}$/);
    expect(workload.metadata.ownerReferences).toEqual([
      {
        apiVersion: "trainfleet.dev/v1alpha1",
        kind: "TrainingJob",
        name: "vision",
        uid: waiting.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(workload.metadata.labels).toMatchObject({
      "app.kubernetes.io/managed-by": "trainfleet-operator",
      "trainfleet.dev/job-name": "vision",
    });
    expect(workload.spec).toMatchObject({ queueName: queue, active: true });
    expect(workload.spec.podSets.map((podSet) => [podSet.name, podSet.count, podSet.minCount])).toEqual([
      ["coordinator", 1, undefined],
      ["parameter-server", 1, undefined],
      ["worker", 2, undefined],
    ]);
    const waitingMessage = `waiting for Kueue to admit Workload ${name} from LocalQueue ${queue}`;
    expect(condition(waiting, "Suspended")!.message).toBe(waitingMessage);
    expect(waiting.status!.phase).toBe("Suspended");
    expect(await h.podNames("vision")).toEqual([]);

    const noRoom = "couldn't assign flavors to pod set worker: insufficient unused quota for cpu in flavor a100, 2 more needed";
    await kueue.pending(name, noRoom);
    await conditionMessage(h, "vision", "Suspended", `${waitingMessage}: ${noRoom}`);
    expect(await h.podNames("vision")).toEqual([]);

    await kueue.createFlavor("a100", flavorLabels, [gpuToleration]);
    await kueue.admit(name, "gpu-cluster", "a100");
    const pods = await h.waitForPods("vision", podsOf("vision", 1, 2));
    const admitted = await h.waitForCondition("vision", "Suspended", "False", "Admitted");
    expect(condition(admitted, "Suspended")!.message).toBe(`Kueue admitted Workload ${name} to ClusterQueue gpu-cluster`);
    for (const pod of pods) {
      expect(pod.spec!.nodeSelector).toMatchObject(flavorLabels);
      expect(pod.spec!.tolerations).toContainEqual(gpuToleration);
      // The Workload admits the pods: no queue label, or Kueue's pod integration would queue each again.
      expect(pod.metadata!.labels!["kueue.x-k8s.io/queue-name"]).toBeUndefined();
      expect(() => new Pod(JSON.parse(JSON.stringify(pod)) as object).validate()).not.toThrow();
      // Kueue counts what the pods ask for: each pod set's template asks for exactly what its pods do.
      const podSet = podSetOf(workload, pod);
      expect(podSet.template.spec.containers.map((container) => [container.name, container.resources])).toEqual(
        pod.spec!.containers.map((container) => [container.name, container.resources]),
      );
      expect(podRequests(podSet)).toEqual(
        podRequests({ name: podSet.name, count: 1, template: { spec: pod.spec! as PodSet["template"]["spec"] } }),
      );
    }
    expect(podRequests(podSetOf(workload, pods.find((pod) => pod.metadata!.name === "vision-worker-0")!))).toMatchObject({
      cpu: 2,
      memory: 4 * 1024 ** 3,
    });
    expectOnlyPermittedCalls(h);
  });

  it("colocated placement: the Workload has no parameter-server pod set", async () => {
    const { h, kueue } = await start();
    await h.submit("colo", { workers: { replicas: 3 }, parameterServers: { placement: "colocated" }, scheduling: { queueName: queue } });
    const workload = await workloadOf(h, kueue, "colo");
    checkWorkload(workload);
    expect(workload.spec.podSets.map((podSet) => [podSet.name, podSet.count])).toEqual([
      ["coordinator", 1],
      ["worker", 3],
    ]);
    await kueue.createFlavor("a100", flavorLabels);
    await kueue.admit(workload.metadata.name, "gpu-cluster", "a100");
    await h.waitForPods("colo", podsOf("colo", 0, 3));
  });

  it("evicted while running: its pods are deleted, the admission cleared on the Workload, Suspended Evicted; admitted again, its pods are back", async () => {
    const { h, kueue } = await start();
    const { workload } = await admittedJob(h, kueue, "evicted");
    const name = workload.metadata.name;
    await h.waitForCondition("evicted", "Suspended", "False", "Admitted");

    await kueue.evict(name, preempted);
    const events = await h.eventsWith("evicted", ["Evicted"]);
    expect(events.find((event) => event.reason === "Evicted")!.message).toBe(
      `Kueue evicted Workload ${name} (Preempted): ${preempted}; the job is queued again once its pods are gone, and resumes from its newest checkpoint`,
    );
    await h.waitForPods("evicted", []);
    const released = await h.waitFor("the admission cleared", async () => {
      const current = await kueue.workload(name);
      return current.status?.admission === undefined ? current : undefined;
    });
    expect(kueue.condition(released, "QuotaReserved")).toMatchObject({ status: "False", reason: "Pending", message: preempted });
    expect(kueue.condition(released, "Admitted")).toMatchObject({ status: "False" });
    await conditionMessage(h, "evicted", "Suspended", `waiting for Kueue to admit Workload ${name} from LocalQueue ${queue}: ${preempted}`);

    await kueue.admit(name, "gpu-cluster", "a100");
    await h.waitForPods("evicted", podsOf("evicted", 1, 2));
    await h.waitForCondition("evicted", "Suspended", "False", "Admitted");
    expect((await kueue.workloadsOf("evicted")).map((current) => current.metadata.uid)).toEqual([workload.metadata.uid]);
  });

  it("succeeded: the Workload gets Finished True, so that Kueue frees its quota", async () => {
    const { h, kueue } = await start();
    const { coordinator, workload } = await admittedJob(h, kueue, "done");
    coordinator.report({ phase: JobPhase.SUCCEEDED, reason: "Completed", message: "accuracy 0.9", step: 10, totalSteps: 10 });
    await h.waitForCondition("done", "Succeeded", "True", "Completed");
    const finished = await h.waitFor("Finished on the Workload", async () => {
      const current = await kueue.workload(workload.metadata.name);
      return kueue.condition(current, "Finished")?.status === "True" ? current : undefined;
    });
    expect(kueue.condition(finished, "Finished")).toMatchObject({ reason: "Succeeded", message: "accuracy 0.9" });
    // Once: later passes write no more.
    const writes = () =>
      h.server.requests.entries({ user: operatorUser, verb: "patch", resource: "workloads", subresource: "status" }).length;
    const before = writes();
    const reconciles = operator!.reconciles;
    await h.waitFor("3 more reconciles", async () => operator!.reconciles >= reconciles + 3);
    expect(writes()).toBe(before);
  });

  it("runPolicy.suspend makes the Workload inactive (Kueue evicts it, and its admission is given back); resuming makes it active again", async () => {
    const { h, kueue } = await start();
    const { workload } = await admittedJob(h, kueue, "paused");
    const name = workload.metadata.name;
    await h.patchSpec("paused", { runPolicy: { suspend: true } });
    await h.waitForPods("paused", []);
    await h.waitFor("spec.active false", async () => (await kueue.workload(name)).spec.active === false);
    await h.waitForCondition("paused", "Suspended", "True", "Suspended");
    await kueue.evict(name, "The workload is deactivated", "InactiveWorkload");
    await h.waitFor("the admission cleared", async () => (await kueue.workload(name)).status?.admission === undefined);

    await h.patchSpec("paused", { runPolicy: { suspend: false } });
    await h.waitFor("spec.active true", async () => (await kueue.workload(name)).spec.active === true);
    await h.waitForCondition("paused", "Suspended", "True", "WaitingForQueue");
    expect(await h.podNames("paused")).toEqual([]);
    await kueue.admit(name, "gpu-cluster", "a100");
    await h.waitForPods("paused", podsOf("paused", 1, 2));
  });

  it("scaling above the admitted workers queues the job again with new counts; scaling down does not", async () => {
    const { h, kueue } = await start();
    const { workload } = await admittedJob(h, kueue, "elastic");
    await h.scale("elastic", 1);
    await h.waitForPods("elastic", podsOf("elastic", 1, 1));
    const kept = await kueue.workload(workload.metadata.name);
    expect(kept.metadata.uid).toBe(workload.metadata.uid);
    expect(kept.status?.admission).toBeDefined();

    await h.scale("elastic", 3);
    const requeued = await h.waitForCondition("elastic", "Suspended", "True", "WaitingForQueue");
    expect(await h.podNames("elastic")).toEqual([]);
    const events = await h.events("elastic");
    expect(events.map((event) => event.message)).toContain(
      "3 workers wanted (spec.workers.replicas), more than the 2 Kueue admitted: the job is queued again at its new size, with a new Workload",
    );
    const again = await workloadOf(h, kueue, "elastic", workload.metadata.uid);
    checkWorkload(again);
    expect(again.metadata.name).toBe(workload.metadata.name);
    expect(again.spec.podSets.map((podSet) => [podSet.name, podSet.count])).toEqual([
      ["coordinator", 1],
      ["parameter-server", 1],
      ["worker", 3],
    ]);
    expect(requeued.status!.phase).toBe("Suspended");
    await kueue.admit(again.metadata.name, "gpu-cluster", "a100");
    await h.waitForPods("elastic", podsOf("elastic", 1, 3));
  });

  it("Kueue not installed: the job's CreateFailed says so, and what to do; no pods are made", async () => {
    const { h } = await start(false);
    await h.submit("nokueue", { workers: { replicas: 1 }, parameterServers: { replicas: 1 }, scheduling: { queueName: queue } });
    const refused = await h.waitForCondition("nokueue", "CreateFailed", "True", "NotFound");
    expect(condition(refused, "CreateFailed")!.message).toMatch(
      /^creating Workload trainingjob-nokueue-[0-9a-f]{5}: .* \(the API server serves no kueue\.x-k8s\.io\/v1beta1 Workloads: Kueue is not installed\); install Kueue, or remove spec\.scheduling\.queueName$/,
    );
    expect(condition(refused, "Suspended")).toMatchObject({ status: "True", reason: "WaitingForQueue" });
    const warning = (await h.eventsWith("nokueue", ["NotFound"])).find((event) => event.reason === "NotFound")!;
    expect(warning.type).toBe("Warning");
    expect(await h.podNames("nokueue")).toEqual([]);
  });
});
