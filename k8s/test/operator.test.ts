/**
 * The operator against the in-process Kubernetes API server (testing/src/kube-api-server: the REST
 * and watch protocol, with 409s, 410 re-lists, dropped watches and injected 500s), with the real
 * @kubernetes/client-node informers and clients. No real kube-apiserver can run here: pods do not
 * run either, so a FakeKubelet writes their status, and each job's coordinator status API is the
 * coordinator's real HTTP server serving a status the test sets.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobPhase } from "@trainfleet/proto";
import { cliMain } from "@trainfleet/testing/fleet/run-fleet";
import { rbacResource } from "@trainfleet/testing/k8s/kube-api-server/request-log";
import { defaultResources, volcanoPodGroups } from "@trainfleet/testing/k8s/kube-api-server/resource-table";
import { coschedulingPodGroups, namespace, OperatorHarness, operatorUser, podsOf } from "@trainfleet/testing/k8s/operator/operator-harness";
import { allows, operatorRules } from "@trainfleet/testing/k8s/operator-permissions";
import { createTrainingJobValidator } from "@trainfleet/testing/k8s/training-job-validator";
import { Event, Pod, Service } from "kubernetes-models/v1";
import { afterEach, describe, expect, it } from "vitest";
import type { JsonObject } from "../src/json.js";
import { labels } from "../src/names.js";
import type { TrainingJob } from "../src/training-job.js";

let harness: OperatorHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const uidsOf = (pods: { metadata?: { name?: string; uid?: string } }[]) =>
  Object.fromEntries(pods.map((pod) => [pod.metadata!.name!, pod.metadata!.uid!]));
const condition = (job: TrainingJob, type: string) => job.status?.conditions?.find((candidate) => candidate.type === type);

const validate = createTrainingJobValidator();

/** The job, status included, is valid by the CRD's schema: a real API server would not drop what the operator writes. */
function expectValidByCrd(job: TrainingJob): void {
  expect(validate(job as unknown as JsonObject).violations).toEqual([]);
}

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
      expect(pod.metadata!.ownerReferences).toEqual([
        expect.objectContaining({ kind: "TrainingJob", name: "mnist", uid: job.metadata.uid, controller: true }),
      ]);
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
    expect(JSON.parse(specJson)).toMatchObject({
      jobId: "mnist",
      workers: { replicas: 2, maxWorkers: 1024 },
      parameterServers: { shards: 2 },
    });
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
    expectValidByCrd(running);

    // Status is patched only when it changes: many reconciles later (one per 100 ms poll), no new patch.
    const patches = () => h.server.requests.entries({ verb: "patch", resource: "trainingjobs", subresource: "status" }).length;
    const before = patches();
    const reconciles = h.operator!.reconciles;
    await h.waitFor("5 more reconciles", async () => h.operator!.reconciles >= reconciles + 5);
    expect(patches()).toBe(before);
    coordinator.training(2, 8);
    await h.waitFor("step 8 in the status", async () => (await h.job("mnist")).status?.step === 8);
    expect(patches()).toBe(before + 1);

    const events = await h.events("mnist");
    for (const event of events) {
      expect(event.involvedObject).toMatchObject({ kind: "TrainingJob", name: "mnist", uid: job.metadata.uid });
      expect(() => new Event(JSON.parse(JSON.stringify(event)) as ConstructorParameters<typeof Event>[0]).validate()).not.toThrow();
    }
    const reasons = events.map((event) => event.reason);
    expect(reasons).toEqual(expect.arrayContaining(["TrainingJobCreated", "Admitted", "Training"]));
    expect(reasons.filter((reason) => reason === "Training")).toHaveLength(1);
    expectOnlyPermittedCalls(h);
  });

  it("scales workers through the scale subresource without restarting running ones; scaling down removes the highest ranks", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    const coordinator = await h.submit("elastic", { workers: { replicas: 2 }, parameterServers: { replicas: 1 } });
    const first = uidsOf(await h.waitForPods("elastic", podsOf("elastic", 1, 2)));
    await h.kubelet.runAll();
    coordinator.training(2, 3);
    await h.waitForCondition("elastic", "Running", "True");

    await h.scale("elastic", 4);
    const up = uidsOf(await h.waitForPods("elastic", podsOf("elastic", 1, 4)));
    for (const name of Object.keys(first)) expect(up[name], `${name} kept`).toBe(first[name]);
    expect(condition(await h.waitForCondition("elastic", "Rescaling", "True"), "Rescaling")!.reason).toMatch(/ScalingUp|WaitingForWorkers/);
    await h.kubelet.runAll();
    coordinator.training(4, 5);
    const rescaled = await h.waitForCondition("elastic", "Rescaling", "False", "Rescaled");
    expect(rescaled.status).toMatchObject({ replicas: 4, readyReplicas: 4, phase: "Running" });
    // The coordinator's spec (and so the global batch) stays that of the job's start.
    const spec = (await h.pods("elastic"))
      .find((pod) => pod.metadata!.name === "elastic-coordinator")!
      .spec!.containers[0]!.env!.find((env) => env.name === "TRAINFLEET_SPEC")!.value!;
    expect(JSON.parse(spec)).toMatchObject({ workers: { replicas: 2 } });

    await h.scale("elastic", 1);
    const down = uidsOf(await h.waitForPods("elastic", podsOf("elastic", 1, 1)));
    expect(down["elastic-worker-0"]).toBe(first["elastic-worker-0"]);
    expect(down["elastic-coordinator"]).toBe(first["elastic-coordinator"]);
    coordinator.training(1, 9);
    const scaledDown = await h.waitForCondition("elastic", "Rescaling", "False", "Rescaled");
    expect(scaledDown.status!.replicas).toBe(1);
    expectValidByCrd(scaledDown);
    const scale = (await h.custom.getNamespacedCustomObjectScale({
      group: "trainfleet.dev",
      version: "v1alpha1",
      namespace,
      plural: "trainingjobs",
      name: "elastic",
    })) as { status: { replicas: number; selector: string } };
    expect(scale.status).toEqual({ replicas: 1, selector: `${labels.jobName}=elastic,${labels.role}=worker` });
    await h.eventsWith("elastic", ["ScalingUp", "ScalingDown", "Rescaled"]);
    expectOnlyPermittedCalls(h);
  });

  it("suspends (deleting every pod) and resumes (creating them again); activeDeadlineSeconds counts from the resume", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    await h.submit("pausable", { workers: { replicas: 1 }, parameterServers: { replicas: 1 } });
    await h.waitForPods("pausable", podsOf("pausable", 1, 1));
    await h.kubelet.runAll();
    await h.waitFor("a start time", async () => (await h.job("pausable")).status?.startTime !== undefined);

    await h.patchSpec("pausable", { runPolicy: { suspend: true } });
    const suspended = await h.waitForCondition("pausable", "Suspended", "True", "Suspended");
    await h.waitForPods("pausable", []);
    expect(suspended.status!.phase).toBe("Suspended");
    expect(suspended.status!.startTime).toBeUndefined();
    expectValidByCrd(suspended);
    expect(await h.core.readNamespacedService({ name: "pausable-coordinator", namespace })).toBeDefined();

    await h.patchSpec("pausable", { runPolicy: { suspend: false, activeDeadlineSeconds: 1 } });
    await h.waitForCondition("pausable", "Suspended", "False", "Resumed");
    await h.waitForPods("pausable", podsOf("pausable", 1, 1));
    const failed = await h.waitForCondition("pausable", "Failed", "True", "DeadlineExceeded", 5000);
    expect(condition(failed, "Failed")!.message).toContain("activeDeadlineSeconds (1 s)");
    expect(Date.parse(failed.status!.completionTime!) - Date.parse(failed.status!.startTime!)).toBeGreaterThanOrEqual(1000);
    // cleanPodPolicy Running (the default): the pods that had not ended are deleted.
    await h.waitForPods("pausable", []);
    const events = await h.eventsWith("pausable", ["Suspended", "Resumed", "DeadlineExceeded"]);
    expect(events.find((event) => event.reason === "DeadlineExceeded")!.type).toBe("Warning");
    expect(events.map((event) => event.reason)).toEqual(expect.arrayContaining(["Suspended", "Resumed"]));
  });

  it("restarts a failed coordinator or shard until backoffLimit, then fails; a failed worker is replaced without counting", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    const coordinator = await h.submit("flaky", {
      workers: { replicas: 2 },
      parameterServers: { replicas: 1 },
      runPolicy: { backoffLimit: 1 },
    });
    const first = uidsOf(await h.waitForPods("flaky", podsOf("flaky", 1, 2)));
    await h.kubelet.runAll();
    coordinator.training(2, 1);
    await h.waitForCondition("flaky", "Running", "True");

    await h.kubelet.exit(
      "flaky-worker-1",
      1,
      '{"level":30,"msg":"registered"}\ntrainfleet: worker: no Fashion-MNIST data found (searched /usr/share/datasets/fashion-mnist)\n',
    );
    await h.waitFor("flaky-worker-1 made again", async () => {
      const pod = (await h.pods("flaky")).find((candidate) => candidate.metadata!.name === "flaky-worker-1");
      return pod !== undefined && pod.metadata!.uid !== first["flaky-worker-1"];
    });
    expect((await h.job("flaky")).status!.restarts).toBeUndefined();
    const workerFailed = (await h.eventsWith("flaky", ["WorkerPodFailed"])).filter((event) => event.reason === "WorkerPodFailed");
    expect(workerFailed.map((event) => [event.type, event.message])).toEqual([
      [
        "Warning",
        "flaky-worker-1 exited 1 (Error): trainfleet: worker: no Fashion-MNIST data found (searched /usr/share/datasets/fashion-mnist); it is made again (lost workers do not count against runPolicy.backoffLimit)",
      ],
    ]);

    await h.kubelet.exit("flaky-ps-0", 1);
    const restarting = await h.waitForCondition("flaky", "Restarting", "True", "ParameterServerFailed");
    expect(restarting.status!.restarts).toBe(1);
    expect(condition(restarting, "Restarting")!.message).toBe(
      "flaky-ps-0 exited 1 (Error); restart 1 of at most 1, from the newest checkpoint",
    );
    const second = uidsOf(await h.waitForPods("flaky", podsOf("flaky", 1, 2)));
    expect(second["flaky-ps-0"]).not.toBe(first["flaky-ps-0"]);
    expect(second["flaky-coordinator"]).toBe(first["flaky-coordinator"]);
    await h.kubelet.run("flaky-ps-0");
    coordinator.training(2, 2);
    await h.waitForCondition("flaky", "Restarting", "False", "Recovered");

    await h.kubelet.exit("flaky-coordinator", 1);
    const failed = await h.waitForCondition("flaky", "Failed", "True", "BackoffLimitExceeded");
    expect(condition(failed, "Failed")!.message).toContain("runPolicy.backoffLimit is 1");
    expect(failed.status!.restarts).toBe(1);
    expectValidByCrd(failed);
    // The failed coordinator stays for its logs; the pods still running are deleted.
    await h.waitForPods("flaky", ["flaky-coordinator"]);
    const warnings = (await h.eventsWith("flaky", ["ParameterServerFailed", "BackoffLimitExceeded"]))
      .filter((event) => event.type === "Warning")
      .map((event) => event.reason);
    expect(warnings).toEqual(expect.arrayContaining(["ParameterServerFailed", "BackoffLimitExceeded"]));
    expectOnlyPermittedCalls(h);
  });

  it("fails the job with the coordinator's own reason when the coordinator reports failure", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    const coordinator = await h.submit("doomed", { workers: { replicas: 2, minWorkers: 2 }, parameterServers: { replicas: 1 } });
    await h.waitForPods("doomed", podsOf("doomed", 1, 2));
    await h.kubelet.runAll();
    coordinator.report({
      phase: JobPhase.PAUSED,
      reason: "NotEnoughWorkers",
      message: "1 of at least 2 workers",
      pauseDeadlineUnixMs: BigInt(Date.now() + 60_000),
    });
    const paused = await h.waitForCondition("doomed", "Running", "False", "NotEnoughWorkers");
    expect(condition(paused, "Running")!.message).toBe("1 of at least 2 workers");
    coordinator.report({ phase: JobPhase.FAILED, reason: "PauseTimeout", message: "fewer than 2 workers for 300 s" });
    const failed = await h.waitForCondition("doomed", "Failed", "True", "PauseTimeout");
    expect(failed.status).toMatchObject({ phase: "Failed" });
    expect(condition(failed, "Failed")!.message).toBe("fewer than 2 workers for 300 s");
    expect(failed.status!.restarts).toBeUndefined();
    await h.waitForPods("doomed", []);
    expect((await h.eventsWith("doomed", ["PauseTimeout"])).find((event) => event.reason === "PauseTimeout")).toMatchObject({
      type: "Warning",
      message: "fewer than 2 workers for 300 s",
    });
  });

  it("fails a job its coordinator would refuse before any pod runs, naming the TrainingJob field", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    // The CRD allows both; the coordinator refuses periodic checkpoints in async mode.
    await h.submit("refused", { training: { mode: "async" }, checkpoints: { claimName: "ckpt", everySteps: 100 } });
    const failed = await h.waitForCondition("refused", "Failed", "True", "InvalidSpec");
    expect(condition(failed, "Failed")!.message).toMatch(
      /^spec\.checkpoints\.everySteps: async mode takes no periodic checkpoints.*; fix the TrainingJob and create it again$/,
    );
    expect(await h.podNames("refused")).toEqual([]);
    expect(h.server.requests.entries({ user: operatorUser, verb: "create", resource: "pods" })).toEqual([]);
    expect((await h.eventsWith("refused", ["InvalidSpec"])).find((event) => event.reason === "InvalidSpec")!.type).toBe("Warning");
    expectValidByCrd(failed);
  });

  it("on success applies cleanPodPolicy, and deletes the job ttlSecondsAfterFinished later (its pods and Service with it)", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    const coordinator = await h.submit("done", {
      workers: { replicas: 1 },
      parameterServers: { replicas: 1 },
      runPolicy: { ttlSecondsAfterFinished: 1, cleanPodPolicy: "All" },
    });
    await h.waitForPods("done", podsOf("done", 1, 1));
    await h.kubelet.runAll();
    await h.kubelet.exit("done-worker-0", 0);
    coordinator.report({
      phase: JobPhase.SUCCEEDED,
      reason: "Completed",
      message: "accuracy 0.86",
      step: 100,
      totalSteps: 100,
      testAccuracy: 0.86,
    });
    const succeeded = await h.waitForCondition("done", "Succeeded", "True", "Completed");
    expect(succeeded.status).toMatchObject({ phase: "Succeeded", accuracy: 0.86, step: 100 });
    expect(succeeded.status!.completionTime).toBeDefined();
    expectValidByCrd(succeeded);
    await h.waitForPods("done", []); // All: the finished worker too
    await h.waitFor(
      "the job deleted after its TTL",
      async () => {
        try {
          await h.job("done");
          return false;
        } catch (error) {
          return (error as { code?: number }).code === 404;
        }
      },
      5000,
    );
    await h.server.garbageCollected();
    await expect(h.core.readNamespacedService({ name: "done-coordinator", namespace })).rejects.toMatchObject({ code: 404 });
    expectOnlyPermittedCalls(h);
  });

  it("gang admission: Admitted only when the minimum set is scheduled; Failed with GangTimeout naming what is missing", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    await h.submit("gang", {
      workers: { replicas: 3, minWorkers: 2 },
      parameterServers: { replicas: 1 },
      scheduling: { gang: { enabled: true, timeoutSeconds: 2 } },
    });
    await h.waitForPods("gang", podsOf("gang", 1, 3));
    for (const name of ["gang-coordinator", "gang-ps-0", "gang-worker-0", "gang-worker-2"]) await h.kubelet.schedule(name);
    await h.kubelet.unschedulable("gang-worker-1", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.");
    const waiting = await h.waitFor("the unschedulable pod named", async () => {
      const job = await h.job("gang");
      return condition(job, "Admitted")?.message?.includes("Unschedulable") === true ? job : undefined;
    });
    expect(condition(waiting, "Admitted")).toMatchObject({ status: "False", reason: "WaitingForGang" });
    // The minimum set is what the coordinator waits for: every worker the job starts with, whatever minWorkers.
    expect(condition(waiting, "Admitted")!.message).toMatch(
      /^4 of 5 pods of the minimum set are scheduled; not yet: gang-worker-1 \(Unschedulable: 0\/3 nodes are available: 3 Insufficient nvidia.com\/gpu.\); the job fails at /,
    );
    const failed = await h.waitForCondition("gang", "Failed", "True", "GangTimeout", 6000);
    expect(condition(failed, "Failed")!.message).toContain("gang-worker-1 (Unschedulable");
    expect(condition(failed, "Failed")!.message).toContain("scheduling.gang.timeoutSeconds (2) passed");
    expectValidByCrd(failed);
    await h.waitForPods("gang", []);

    // A gang whose minimum set is scheduled is admitted; worker-3, scaled up before that and beyond the set, need not be.
    await h.submit("gang2", {
      workers: { replicas: 3, minWorkers: 2 },
      parameterServers: { replicas: 1 },
      scheduling: { gang: { enabled: true, timeoutSeconds: 60 } },
    });
    await h.waitForPods("gang2", podsOf("gang2", 1, 3));
    await h.patchSpec("gang2", { workers: { replicas: 4, minWorkers: 2 } });
    await h.waitForPods("gang2", podsOf("gang2", 1, 4));
    for (const name of ["gang2-coordinator", "gang2-ps-0", "gang2-worker-0", "gang2-worker-1", "gang2-worker-2"])
      await h.kubelet.schedule(name);
    const admitted = await h.waitForCondition("gang2", "Admitted", "True", "GangScheduled");
    expect(condition(admitted, "Admitted")!.message).toBe("all 5 pods of the minimum set are scheduled");
  });

  it("gang admission by a gang scheduler: a Volcano or coscheduling PodGroup, and the pods that name it", async () => {
    harness = await OperatorHarness.start({
      podGroupApis: ["volcano", "coscheduling"],
      resources: [...defaultResources, volcanoPodGroups],
    });
    const h = harness;
    await h.submit("vc", {
      workers: { replicas: 2, minWorkers: 1 },
      parameterServers: { replicas: 2 },
      scheduling: { gang: { enabled: true }, schedulerName: "volcano", priorityClassName: "batch" },
    });
    const pods = await h.waitForPods("vc", podsOf("vc", 2, 2));
    const group = await h.waitFor("the PodGroup", async () => h.server.object(volcanoPodGroups, namespace, "vc"));
    expect(group).toMatchObject({ apiVersion: "scheduling.volcano.sh/v1beta1", spec: { minMember: 5, priorityClassName: "batch" } });
    expect((group.metadata as { ownerReferences: unknown[] }).ownerReferences).toHaveLength(1);
    for (const pod of pods) {
      expect(pod.metadata!.annotations!["scheduling.k8s.io/group-name"]).toBe("vc");
      expect(pod.spec!.schedulerName).toBe("volcano");
      expect(pod.spec!.priorityClassName).toBe("batch");
    }
    expectOnlyPermittedCalls(h, ["volcano"]);
    await h.close();

    harness = await OperatorHarness.start({ podGroupApis: ["coscheduling"], resources: [...defaultResources, coschedulingPodGroups] });
    const c = harness;
    await c.submit("cs", {
      workers: { replicas: 2 },
      parameterServers: { replicas: 1 },
      scheduling: { gang: { enabled: true, timeoutSeconds: 120 }, schedulerName: "scheduler-plugins-scheduler" },
    });
    const csPods = await c.waitForPods("cs", podsOf("cs", 1, 2));
    const csGroup = await c.waitFor("the PodGroup", async () => c.server.object(coschedulingPodGroups, namespace, "cs"));
    expect(csGroup).toMatchObject({ apiVersion: "scheduling.x-k8s.io/v1alpha1", spec: { minMember: 4, scheduleTimeoutSeconds: 120 } });
    for (const pod of csPods) {
      expect(pod.metadata!.labels!["scheduling.x-k8s.io/pod-group"]).toBe("cs");
      expect(pod.spec!.schedulerName).toBe("scheduler-plugins-scheduler");
    }
    expectOnlyPermittedCalls(c, ["coscheduling"]);
  });

  it("Kueue with the operator's integration off (no --kueue): a job in a queue runs at once, its pods carry the queue label for Kueue's pod integration, and Created says so", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    await h.submit("queued", { workers: { replicas: 1 }, parameterServers: { replicas: 1 }, scheduling: { queueName: "team-vision" } });
    const pods = await h.waitForPods("queued", podsOf("queued", 1, 1));
    for (const pod of pods) expect(pod.metadata!.labels![labels.kueueQueue]).toBe("team-vision");
    const job = await h.waitForCondition("queued", "Created", "True");
    expect(condition(job, "Created")!.message).toContain(
      "the operator runs without --kueue (chart value kueue.enabled): it makes no Workload",
    );
    expect(condition(job, "Suspended")).toBeUndefined();
    // No Workload API is called (none is served here: a call would 404 and show as CreateFailed).
    expect(h.server.requests.entries({ user: operatorUser }).some((entry) => entry.apiGroup === "kueue.x-k8s.io")).toBe(false);
  });

  it("an operator stopped in the middle of a reconcile is replaced by one that finishes it, creating nothing twice", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    // The first operator's reconcile gets as far as the Service: creating pods fails, and so would its status.
    const podCreates = h.server.failNext({ verb: "create", resource: "pods" }, { code: 500, times: 1_000_000 });
    const statusPatches = h.server.failNext(
      { verb: "patch", resource: "trainingjobs", subresource: "status" },
      { code: 500, times: 1_000_000 },
    );
    await h.submit("interrupted", { workers: { replicas: 2 }, parameterServers: { replicas: 2 } });
    await h.waitFor("a failed pod create", async () =>
      h.server.requests.entries({ user: operatorUser, verb: "create", resource: "pods" }).some((entry) => entry.injected),
    );
    await h.stopOperator();
    const service = await h.core.readNamespacedService({ name: "interrupted-coordinator", namespace });
    expect(await h.podNames("interrupted")).toEqual([]);
    expect((await h.job("interrupted")).status).toBeUndefined();
    podCreates.cancel();

    // The second gets every pod made, but its status cannot be written either; it is stopped too.
    await h.startOperator();
    const pods = await h.waitForPods("interrupted", podsOf("interrupted", 2, 2));
    await h.waitFor("a failed status patch", async () =>
      h.server.requests.entries({ user: operatorUser, verb: "patch", subresource: "status" }).some((entry) => entry.injected),
    );
    await h.stopOperator();
    statusPatches.cancel();

    // The third finds it all made and writes the status once, with one event per transition.
    await h.startOperator();
    const admitted = await h.waitForCondition("interrupted", "Admitted", "True");
    expect(uidsOf(await h.pods("interrupted"))).toEqual(uidsOf(pods));
    expect((await h.core.readNamespacedService({ name: "interrupted-coordinator", namespace })).metadata!.uid).toBe(service.metadata!.uid);
    expect(admitted.status!.phase).toBe("Admitted");
    const reasons = (await h.eventsWith("interrupted", ["TrainingJobCreated", "Admitted"])).map((event) => event.reason);
    expect(reasons.filter((reason) => reason === "TrainingJobCreated")).toHaveLength(1);
    expect(reasons.filter((reason) => reason === "Admitted")).toHaveLength(1);
    const creates = h.server.requests.entries({ user: operatorUser, verb: "create", resource: "pods", status: 201 });
    expect(creates).toHaveLength(5);
  });

  it("mounts spec.storage read-only and passes spec.credentialsSecret by reference into every pod; the coordinator gets the model and data fields", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    const secretKeys = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL_S3"];
    await h.submit("own", {
      model: {
        layers: { uri: "/mnt/files/models/digits/model.json", loss: "sparse-categorical-crossentropy", module: "/opt/digits/layers.mjs" },
      },
      dataset: { manifest: "s3://training-data/digits/dataset.json", evalManifest: "/mnt/files/datasets/digits/eval.json" },
      storage: { persistentVolumeClaim: { claimName: "training-files" }, mountPath: "/mnt/files" },
      credentialsSecret: "s3-credentials",
      checkpoints: { claimName: "ckpt" },
      // A worker template's own volume and mount join the operator's, as a strategic merge patch would.
      workers: {
        replicas: 2,
        template: {
          spec: {
            volumes: [{ name: "scratch", emptyDir: {} }],
            containers: [{ name: "trainfleet", volumeMounts: [{ name: "scratch", mountPath: "/scratch" }] }],
          },
        },
      },
      parameterServers: { replicas: 1 },
    });
    const pods = await h.waitForPods("own", podsOf("own", 1, 2));
    const data = { name: "trainfleet-data", persistentVolumeClaim: { claimName: "training-files", readOnly: true } };
    const dataMount = { name: "trainfleet-data", mountPath: "/mnt/files", readOnly: true };
    for (const pod of pods) {
      const name = pod.metadata!.name!;
      const container = pod.spec!.containers[0]!;
      const isWorker = name.includes("-worker-");
      expect(pod.spec!.volumes!.map((volume) => volume.name).sort(), name).toEqual(
        isWorker
          ? ["scratch", "trainfleet-data", "trainfleet-tls", "trainfleet-tmp"]
          : name === "own-coordinator"
            ? ["checkpoints", "trainfleet-data", "trainfleet-tls", "trainfleet-tmp", "trainfleet-tokens"]
            : ["checkpoints", "trainfleet-data", "trainfleet-tls", "trainfleet-tmp"],
      );
      expect(pod.spec!.volumes, name).toContainEqual(data);
      expect(container.volumeMounts, name).toContainEqual(dataMount);
      if (isWorker) expect(container.volumeMounts, name).toContainEqual({ name: "scratch", mountPath: "/scratch" });
      // Each key by reference to the Secret, optional; never a value in the pod spec.
      const credentials = container.env!.filter((variable) => secretKeys.includes(variable.name));
      expect(credentials, name).toEqual(
        secretKeys.map((key) => ({ name: key, valueFrom: { secretKeyRef: { name: "s3-credentials", key, optional: true } } })),
      );
      expect(() => new Pod(JSON.parse(JSON.stringify(pod)) as object).validate(), name).not.toThrow();
    }
    const coordinatorPod = pods.find((pod) => pod.metadata!.name === "own-coordinator")!;
    const specJson = coordinatorPod.spec!.containers[0]!.env!.find((variable) => variable.name === "TRAINFLEET_SPEC")!.value!;
    const spec = JSON.parse(specJson) as Record<string, unknown>;
    expect(spec["model"]).toEqual({
      layers: {
        uri: "/mnt/files/models/digits/model.json",
        loss: "LOSS_SPARSE_CATEGORICAL_CROSSENTROPY",
        module: "/opt/digits/layers.mjs",
      },
    });
    expect(spec["dataset"]).toEqual({
      manifest: "s3://training-data/digits/dataset.json",
      evalManifest: "/mnt/files/datasets/digits/eval.json",
    });
    // Kubernetes' own fields stay Kubernetes': the coordinator's JobSpec does not name the claim or the Secret.
    expect(specJson).not.toMatch(/training-files|s3-credentials/);
    // The operator never reads the user's Secret: its values cannot reach its log or anything it writes.
    const secretPaths = h.server.requests.entries({ user: operatorUser, resource: "secrets" }).map((entry) => entry.path);
    expect(secretPaths.filter((path) => path.includes("s3-credentials"))).toEqual([]);
    expectValidByCrd(await h.job("own"));
    expectOnlyPermittedCalls(h);
  });

  it("mounts only its TLS credentials (and the coordinator's tokens) and its scratch /tmp, and adds no user credentials, to a job without spec.storage or spec.credentialsSecret", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    await h.submit("plain", { workers: { replicas: 1 }, parameterServers: { replicas: 1 } });
    for (const pod of await h.waitForPods("plain", podsOf("plain", 1, 1))) {
      const name = pod.metadata!.name!;
      expect(pod.spec!.volumes!.map((volume) => volume.name)).toEqual(
        name === "plain-coordinator" ? ["trainfleet-tmp", "trainfleet-tls", "trainfleet-tokens"] : ["trainfleet-tmp", "trainfleet-tls"],
      );
      // Nothing is written but scratch: the root filesystem is read-only, and every other mount too.
      const writable = pod.spec!.containers[0]!.volumeMounts!.filter((mount) => mount.readOnly !== true);
      expect(writable).toEqual([{ name: "trainfleet-tmp", mountPath: "/tmp" }]);
      expect(pod.spec!.containers[0]!.env!.filter((variable) => variable.valueFrom?.secretKeyRef !== undefined)).toEqual([]);
    }
  });

  it("informers recover from dropped watches, 500s on the watch and 410 re-lists, and the operator keeps reconciling", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    const coordinator = await h.submit("steady", { workers: { replicas: 1 }, parameterServers: { replicas: 1 } });
    await h.waitForPods("steady", podsOf("steady", 1, 1));
    await h.kubelet.runAll();
    coordinator.training(1, 1);
    await h.waitForCondition("steady", "Running", "True");

    h.server.failNext({ verb: "watch" }, { code: 500, times: 3 });
    h.server.failNext({ verb: "list" }, { code: 500, times: 1 });
    expect(h.server.dropWatches()).toBeGreaterThanOrEqual(3);
    await h.waitFor("every informer restarted", async () => h.operator!.informers.every((informer) => informer.restarts > 0));
    await h.scale("steady", 2);
    await h.waitForPods("steady", podsOf("steady", 1, 2));

    // A watch too old to resume gets 410 and the informer lists again.
    h.server.compact();
    h.server.dropWatches();
    await h.scale("steady", 3);
    await h.waitForPods("steady", podsOf("steady", 1, 3));
    expect(h.server.requests.entries({ user: operatorUser, verb: "list", resource: "pods" }).length).toBeGreaterThanOrEqual(2);
    expectOnlyPermittedCalls(h);
  });
});

describe("trainfleet operator, the process (against the in-process test API server: no real kube-apiserver can run here)", () => {
  it("finds the cluster from --kubeconfig, reconciles, and stops cleanly on SIGTERM (exit 143, as every trainfleet role)", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    await h.stopOperator();
    const dir = mkdtempSync(join(tmpdir(), "trainfleet-operator-"));
    const kubeconfig = join(dir, "config");
    writeFileSync(kubeconfig, h.server.kubeConfig(namespace, operatorUser).exportConfig());
    const earlier = h.server.requests.entries({ user: operatorUser }).length; // the in-process operator's
    const child = spawn(
      process.execPath,
      [cliMain, "operator", "--kubeconfig", kubeconfig, "--status-poll-ms", "200", "--namespaces", namespace],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      await h.submit("by-process", { workers: { replicas: 1 }, parameterServers: { replicas: 1 } });
      await h.waitForPods("by-process", podsOf("by-process", 1, 1));
      await h.waitForCondition("by-process", "Admitted", "True");
    } finally {
      child.kill("SIGTERM");
    }
    const exitCode = await exited;
    expect(exitCode, output).toBe(143);
    expect(output).toContain("operator started");
    expect(output).toContain("operator stopped");
    // --namespaces: it watched only its namespace.
    const watches = h.server.requests
      .entries({ user: operatorUser })
      .slice(earlier)
      .filter((entry) => entry.verb === "watch");
    expect(watches.length).toBeGreaterThanOrEqual(3);
    for (const entry of watches) expect(entry.namespace).toBe(namespace);
  });

  it("refuses an unknown --gang-pod-groups API, naming the choices", async () => {
    const child = spawn(process.execPath, [cliMain, "operator", "--gang-pod-groups", "kueue"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(1);
    expect(stderr).toContain('--gang-pod-groups: unknown API "kueue"; use volcano or coscheduling');
  });
});
