/**
 * Two operator replicas against the in-process test API server (no real kube-apiserver can run
 * here), each with its own identity and its own user in the request log, electing a leader over
 * a coordination.k8s.io Lease with a short lease (2 s): exactly one reconciles and writes, a job
 * gets every Event once and its restarts counted once (compared with one operator alone), a
 * standby takes over within the lease when the leader stops renewing without releasing (as a
 * SIGKILL leaves it), and a leader whose Lease another identity took stops at once. Also the
 * probes and the Prometheus metrics of both replicas (checked by the real promtool).
 */
import { readFileSync } from "node:fs";
import type { V1Lease } from "@kubernetes/client-node";
import { CoordinationV1Api } from "@kubernetes/client-node";
import { checkMetrics } from "@trainfleet/testing/fixtures/promtool";
import { coordinationLeases } from "@trainfleet/testing/k8s/kube-api-server/coordination-leases";
import { kubeConfigFor } from "@trainfleet/testing/k8s/kube-api-server/kube-config";
import { rbacResource } from "@trainfleet/testing/k8s/kube-api-server/request-log";
import { defaultResources } from "@trainfleet/testing/k8s/kube-api-server/resource-table";
import { namespace, OperatorHarness, podsOf } from "@trainfleet/testing/k8s/operator/operator-harness";
import { recordingLogger } from "@trainfleet/testing/k8s/operator/polling";
import type { PolicyRule } from "@trainfleet/testing/k8s/operator-permissions";
import { allows, operatorPermissionsPath, operatorRules } from "@trainfleet/testing/k8s/operator-permissions";
import { afterEach, describe, expect, it } from "vitest";
import { LeaderElector, leaderIdentity } from "../src/leader-election.js";
import { createLeaseLock } from "../src/lease-lock.js";
import { Operator } from "../src/operator.js";
import type { LeaderElectionOptions } from "../src/operator-leadership.js";

const leaseNamespace = "trainfleet-system";
const leaseName = "trainfleet-operator";
const timing = { leaseDurationSeconds: 2, renewDeadlineMs: 1500, retryPeriodMs: 200 };

let harness: OperatorHarness | undefined;
const replicas: Operator[] = [];
afterEach(async () => {
  for (const replica of replicas.splice(0)) await replica.stop();
  await harness?.close();
  harness = undefined;
});

/** The in-process server with Leases served, and none of the harness's own operator (each test starts its replicas). */
async function startHarness(): Promise<OperatorHarness> {
  harness = await OperatorHarness.start({ resources: [...defaultResources, coordinationLeases] });
  await harness.stopOperator();
  return harness;
}

/** One replica, as the chart runs it: its own service account user, identity, probe and metrics servers. */
async function startReplica(h: OperatorHarness, user: string, election: Partial<LeaderElectionOptions> = {}): Promise<Operator> {
  const replica = await Operator.start({
    kubeConfig: h.server.kubeConfig(namespace, user),
    logger: recordingLogger(h.logLines),
    statusPollMs: 100,
    finishGraceMs: 300,
    resyncMs: 2000,
    informerBackoff: { initialMs: 50, maxMs: 400 },
    coordinatorUrl: (job) => h.coordinators.get(job.metadata.name)?.url ?? "http://127.0.0.1:1",
    leaderElection: { namespace: leaseNamespace, name: leaseName, identity: leaderIdentity(user), timing, ...election },
    healthListen: "127.0.0.1:0",
    metricsListen: "127.0.0.1:0",
  });
  replicas.push(replica);
  return replica;
}

async function readLease(h: OperatorHarness): Promise<V1Lease> {
  return h.config.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: leaseName, namespace: leaseNamespace });
}

const holderOf = async (h: OperatorHarness) => (await readLease(h)).spec?.holderIdentity;
const millis = (time: unknown) => new Date(time as string).getTime();

/** The one replica that leads, once one does; fails if two ever lead at once while it waits. */
async function leaderOf(h: OperatorHarness, candidates: readonly Operator[]): Promise<Operator> {
  return h.waitFor("a leader", async () => {
    const leading = candidates.filter((candidate) => candidate.leading);
    expect(leading.length).toBeLessThanOrEqual(1);
    return leading[0];
  });
}

const leaderElectionRules = (JSON.parse(readFileSync(operatorPermissionsPath, "utf8")) as { leaderElection: PolicyRule[] }).leaderElection;

/** The calls a user made, as "verb resource"; every one granted by the chart's RBAC (the Lease's only in its own namespace). */
function callsOf(h: OperatorHarness, user: string): string[] {
  const entries = h.server.requests.entries({ user }).filter((entry) => entry.verb !== undefined);
  for (const entry of entries) {
    const request = { apiGroup: entry.apiGroup ?? "", resource: rbacResource(entry), verb: entry.verb! };
    const rules = entry.resource === "leases" && entry.namespace === leaseNamespace ? leaderElectionRules : operatorRules([]);
    expect(allows(rules, request), `${entry.method} ${entry.path}`).toBe(true);
  }
  return entries.map((entry) => `${entry.verb} ${rbacResource(entry)}`);
}

const writes = (calls: string[]) => calls.filter((call) => !/^(get|list|watch) /.test(call));

/**
 * A job whose parameter server fails once and comes back: created, admitted, running,
 * restarting (restart 1), recovered. Returns its Events' reasons, counted.
 */
async function runFlakyJob(h: OperatorHarness): Promise<Record<string, number>> {
  const coordinator = await h.submit("flaky", {
    workers: { replicas: 1 },
    parameterServers: { replicas: 1 },
    runPolicy: { backoffLimit: 3 },
  });
  await h.waitForPods("flaky", podsOf("flaky", 1, 1));
  await h.kubelet.runAll();
  coordinator.training(1, 1);
  await h.waitForCondition("flaky", "Running", "True", "Training");
  await h.kubelet.exit("flaky-ps-0", 1);
  const restarting = await h.waitForCondition("flaky", "Restarting", "True", "ParameterServerFailed");
  expect(restarting.status!.restarts).toBe(1);
  await h.waitForPods("flaky", podsOf("flaky", 1, 1));
  await h.kubelet.run("flaky-ps-0");
  coordinator.training(1, 2);
  const recovered = await h.waitForCondition("flaky", "Restarting", "False", "Recovered");
  expect(recovered.status!.restarts).toBe(1);
  const events = await h.eventsWith("flaky", ["TrainingJobCreated", "ParameterServerFailed", "Recovered"]);
  const counts: Record<string, number> = {};
  for (const event of events) counts[event.reason!] = (counts[event.reason!] ?? 0) + (event.count ?? 1);
  return counts;
}

async function probe(url: string | undefined, path: string): Promise<[number, string]> {
  const response = await fetch(`${url}${path}`);
  return [response.status, (await response.text()).trim()];
}

async function metrics(replica: Operator): Promise<string> {
  const response = await fetch(`${replica.metricsUrl}/metrics`);
  expect(response.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
  return response.text();
}

/** The value of one sample (`name{labels}`), or undefined when the exposition has none. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("two operator replicas electing a leader over a Lease (in-process test API server: no real kube-apiserver can run here)", () => {
  it("lets exactly one lead; a job reconciled while both run gets every Event once and its restart counted once, as with one operator", async () => {
    const alone = await startHarness();
    await leaderOf(alone, [await startReplica(alone, "solo")]);
    const expected = await runFlakyJob(alone);
    for (const replica of replicas.splice(0)) await replica.stop();
    await alone.close();

    const h = await startHarness();
    const a = await startReplica(h, "replica-a");
    const b = await startReplica(h, "replica-b");
    const leader = await leaderOf(h, [a, b]);
    const standby = leader === a ? b : a;
    const [leaderUser, standbyUser] = leader === a ? ["replica-a", "replica-b"] : ["replica-b", "replica-a"];
    expect(await holderOf(h)).toMatch(new RegExp(`^${leaderUser}_[0-9a-f-]{36}$`));

    expect(await runFlakyJob(h)).toEqual(expected);
    expect(expected).toMatchObject({ TrainingJobCreated: 1, ParameterServerFailed: 1, Recovered: 1 });
    expect([leader.leading, standby.leading]).toEqual([true, false]);
    // The standby read (its caches are warm) and tried the Lease, and wrote nothing at all.
    const standbyCalls = callsOf(h, standbyUser);
    expect(writes(standbyCalls)).toEqual([]);
    expect(standbyCalls).toEqual(expect.arrayContaining(["list trainingjobs", "watch pods", "get leases"]));
    expect(standby.reconciles).toBe(0);
    // The leader renews every retry period; the job can finish before its first renewal has answered.
    await h.waitFor("the leader renewing its Lease", async () => callsOf(h, leaderUser).includes("update leases"));
    expect(writes(callsOf(h, leaderUser))).toEqual(expect.arrayContaining(["create pods", "patch trainingjobs/status", "update leases"]));
  });

  it("hands over within the lease when the leader stops renewing without releasing (as when killed), and the new leader carries the job on", async () => {
    const h = await startHarness();
    // The first replica leads alone; releaseOnStop false: stopping it leaves the Lease as a SIGKILL would.
    const first = await startReplica(h, "replica-a", { releaseOnStop: false });
    await leaderOf(h, [first]);
    const second = await startReplica(h, "replica-b");
    const coordinator = await h.submit("steady", {
      workers: { replicas: 1 },
      parameterServers: { replicas: 1 },
      runPolicy: { backoffLimit: 3 },
    });
    await h.waitForPods("steady", podsOf("steady", 1, 1));
    await h.kubelet.runAll();
    coordinator.training(1, 1);
    await h.waitForCondition("steady", "Running", "True", "Training");

    await first.stop();
    const killedAt = performance.now();
    const lastRenew = millis((await readLease(h)).spec!.renewTime);
    await h.waitFor("the second replica leading", async () => second.leading, 10_000);
    const tookMs = performance.now() - killedAt;
    const lease = (await readLease(h)).spec!;
    expect(lease.holderIdentity).toMatch(/^replica-b_/);
    expect(lease.leaseTransitions).toBe(1);
    // It waited for the Lease to expire (2 s after the last renewal it saw), and no longer than that and a retry or two.
    expect(millis(lease.acquireTime) - lastRenew).toBeGreaterThanOrEqual(2000);
    expect(tookMs).toBeLessThan(2000 + 1000);

    // The new leader reconciles the job on: a parameter-server failure is a restart, counted once.
    await h.kubelet.exit("steady-ps-0", 1);
    const restarting = await h.waitForCondition("steady", "Restarting", "True", "ParameterServerFailed");
    expect(restarting.status!.restarts).toBe(1);
    const events = await h.eventsWith("steady", ["TrainingJobCreated", "ParameterServerFailed"]);
    expect(events.filter((event) => event.reason === "TrainingJobCreated").map((event) => event.count ?? 1)).toEqual([1]);
    expect(events.filter((event) => event.reason === "ParameterServerFailed").map((event) => event.count ?? 1)).toEqual([1]);
    // The shard's pod is made again in the pass after the one that recorded the restart.
    await h.waitFor("the new leader making the shard's pod again", async () => callsOf(h, "replica-b").includes("create pods"));
    expect(writes(callsOf(h, "replica-b"))).toEqual(expect.arrayContaining(["create pods", "patch trainingjobs/status"]));
  });

  it("stops a leader whose Lease another identity took at once: it reconciles nothing more, fails its probes, and says why", async () => {
    const h = await startHarness();
    const leader = await startReplica(h, "replica-a");
    await leaderOf(h, [leader]);
    const coordination = h.config.makeApiClient(CoordinationV1Api);
    const lease = await readLease(h);
    await coordination.replaceNamespacedLease({
      name: leaseName,
      namespace: leaseNamespace,
      body: { ...lease, spec: { ...lease.spec, holderIdentity: "intruder", leaseTransitions: (lease.spec!.leaseTransitions ?? 0) + 1 } },
    });

    const failure = await leader.failed();
    expect(failure.message).toBe(
      `lost the leader Lease ${leaseNamespace}/${leaseName}: intruder holds it now; this operator stops reconciling and exits, to be started again as a standby`,
    );
    expect(leader.leading).toBe(false);
    expect(await probe(leader.healthUrl, "/healthz")).toEqual([503, failure.message]);
    expect(await probe(leader.healthUrl, "/readyz")).toEqual([503, failure.message]);
    expect(sample(await metrics(leader), "trainfleet_operator_leader")).toBe(0);

    // A job created now is seen by the old leader's informers, and made by a new replica only once the intruder's Lease expired.
    const successor = await startReplica(h, "replica-b");
    await h.submit("later", { workers: { replicas: 1 }, parameterServers: { replicas: 1 } });
    await h.waitForPods("later", podsOf("later", 1, 1));
    expect(leader.informers.some((informer) => informer.informer.list(namespace).some((job) => job.metadata?.name === "later"))).toBe(true);
    expect(successor.leading).toBe(true);
    expect(writes(callsOf(h, "replica-a")).filter((call) => call !== "update leases" && call !== "create leases")).toEqual([]);
    expect(leader.reconciles).toBe(0);
  });
});

describe("the operator's probes and metrics", () => {
  it("answers /healthz and /readyz on both replicas, and serves metrics that promtool accepts: reconciles, errors, latency, queue, jobs by phase, leader", async () => {
    const h = await startHarness();
    const a = await startReplica(h, "replica-a");
    const b = await startReplica(h, "replica-b");
    const leader = await leaderOf(h, [a, b]);
    const standby = leader === a ? b : a;
    for (const replica of [leader, standby]) {
      expect(await probe(replica.healthUrl, "/healthz")).toEqual([200, "ok"]);
      // A standby is ready: its caches are synced, it can take over at once.
      expect(await probe(replica.healthUrl, "/readyz")).toEqual([200, "ok"]);
    }
    expect((await probe(leader.healthUrl, "/metrics"))[0]).toBe(404);

    const coordinator = await h.submit("watched", { workers: { replicas: 1 }, parameterServers: { replicas: 1 } });
    await h.waitForPods("watched", podsOf("watched", 1, 1));
    await h.kubelet.runAll();
    coordinator.training(1, 1);
    await h.waitForCondition("watched", "Running", "True", "Training");
    // One reconcile fails (a status patch answered 500) and is retried.
    h.server.failNext({ verb: "patch", resource: "trainingjobs", subresource: "status" }, { code: 500 });
    coordinator.training(1, 2);
    await h.waitFor("step 2 in the status", async () => (await h.job("watched")).status?.step === 2);
    await h.waitFor("the standby's cache to show the job running", async () =>
      sample(await metrics(standby), 'trainfleet_operator_training_jobs{phase="Running"}') === 1 ? true : undefined,
    );

    const [leaderText, standbyText] = [await metrics(leader), await metrics(standby)];
    for (const text of [leaderText, standbyText]) expect(checkMetrics(text)).toEqual({ code: 0, output: "" });
    expect(sample(leaderText, "trainfleet_operator_leader")).toBe(1);
    expect(sample(standbyText, "trainfleet_operator_leader")).toBe(0);
    const successes = sample(leaderText, 'trainfleet_operator_reconciles_total{result="success"}')!;
    expect(successes).toBeGreaterThanOrEqual(leader.reconciles);
    expect(sample(leaderText, 'trainfleet_operator_reconciles_total{result="error"}')).toBe(1);
    expect(sample(leaderText, "trainfleet_operator_reconcile_errors_total")).toBe(1);
    expect(sample(leaderText, "trainfleet_operator_reconcile_duration_seconds_count")).toBeGreaterThanOrEqual(successes + 1);
    expect(sample(leaderText, 'trainfleet_operator_reconcile_duration_seconds_bucket{le="+Inf"}')).toBe(
      sample(leaderText, "trainfleet_operator_reconcile_duration_seconds_count"),
    );
    expect(sample(leaderText, "trainfleet_operator_work_queue_depth")).toBeGreaterThanOrEqual(0);
    for (const text of [leaderText, standbyText]) {
      expect(sample(text, 'trainfleet_operator_training_jobs{phase="Running"}')).toBe(1);
      expect(sample(text, 'trainfleet_operator_training_jobs{phase="Failed"}')).toBe(0);
    }
    expect(sample(standbyText, 'trainfleet_operator_reconciles_total{result="success"}')).toBe(0);
    expect(sample(standbyText, "trainfleet_operator_reconcile_duration_seconds_count")).toBeUndefined();
    for (const text of [leaderText, standbyText]) expect(sample(text, "trainfleet_operator_leader_transitions_total")).toBe(0);

    // A leader stopped on purpose (a rolling update's SIGTERM) releases the Lease: the standby leads at once, not a lease later.
    const stoppedAt = performance.now();
    await leader.stop();
    await h.waitFor("the standby leading", async () => standby.leading);
    expect(performance.now() - stoppedAt).toBeLessThan(timing.leaseDurationSeconds * 1000);
    const after = await metrics(standby);
    expect([sample(after, "trainfleet_operator_leader"), sample(after, "trainfleet_operator_leader_transitions_total")]).toEqual([1, 1]);
  });
});

describe("leader election timing", () => {
  it.each([
    [
      { leaseDurationSeconds: 1.5, renewDeadlineMs: 1000, retryPeriodMs: 200 },
      "leaseDurationSeconds must be a whole number of seconds, at least 1 (got 1.5)",
    ],
    [
      { leaseDurationSeconds: 2, renewDeadlineMs: 2000, retryPeriodMs: 200 },
      "renewDeadlineMs (2000) must be shorter than the lease (2000 ms)",
    ],
    [
      { leaseDurationSeconds: 2, renewDeadlineMs: 1000, retryPeriodMs: 900 },
      "renewDeadlineMs (1000) must be longer than 1.2 x retryPeriodMs (900)",
    ],
    [{ leaseDurationSeconds: 2, renewDeadlineMs: 1000, retryPeriodMs: 0 }, "retryPeriodMs must be positive (got 0)"],
  ])("refuses %j, naming the option", (badTiming, message) => {
    // Refused before any call: the lock points nowhere.
    const lock = createLeaseLock(kubeConfigFor("http://127.0.0.1:1").makeApiClient(CoordinationV1Api), leaseNamespace, leaseName);
    const elector = () =>
      new LeaderElector({
        lock,
        identity: "x",
        timing: badTiming,
        logger: recordingLogger([]),
        onStartedLeading() {},
        onStoppedLeading() {},
      });
    expect(elector).toThrow(`leader election: ${message}`);
  });
});
