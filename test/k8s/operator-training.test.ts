/**
 * Operator + real trainfleet processes as pods, on the in-process test API server (no real
 * kube-apiserver or kubelet can run here): two Operator replicas run in process against
 * testing/src/kube-api-server with the real @kubernetes/client-node, electing a leader over a
 * Lease as the chart's two replicas do, and a ProcessKubelet runs each pod the leader makes (the
 * coordinator, the shards, the workers) as a `trainfleet` process with the pod's args and env,
 * writing pod status back through the API. The job really trains: what the operator writes into
 * the TrainingJob's status comes from the coordinator those pods make, and the trained model lands
 * in the output claim (a folder of this host standing for it).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JsonValue } from "@bufbuild/protobuf";
import { fromJson } from "@bufbuild/protobuf";
import type { V1Lease, V1Pod, V1PodSpec } from "@kubernetes/client-node";
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { TrainingJob, TrainingJobSpec } from "@trainfleet/k8s";
import { group, labels, leaderIdentity, Operator, plural, version } from "@trainfleet/k8s";
import type { JobStatus } from "@trainfleet/proto";
import { JobPhase, JobStatusSchema, jobStatusFromJson, WorkerState } from "@trainfleet/proto";
import { coordinationLeases } from "@trainfleet/testing/k8s/kube-api-server/coordination-leases";
import type { KubeApiServer } from "@trainfleet/testing/k8s/kube-api-server/kube-api-server";
import { startKubeApiServer } from "@trainfleet/testing/k8s/kube-api-server/kube-api-server";
import { rbacResource } from "@trainfleet/testing/k8s/kube-api-server/request-log";
import { defaultResources } from "@trainfleet/testing/k8s/kube-api-server/resource-table";
import { namespace, podsOf } from "@trainfleet/testing/k8s/operator/operator-harness";
import { pollUntil, recordingLogger } from "@trainfleet/testing/k8s/operator/polling";
import { ProcessKubelet } from "@trainfleet/testing/k8s/operator/process-kubelet";
import { afterEach, describe, expect, it } from "vitest";

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** One operator replica: a pod of the chart's Deployment. */
interface Replica {
  /**
   * Its user in the request log. Both pods of the Deployment run as its one service account; each
   * replica here has a user of its own so that the log tells their calls apart (as a real audit
   * log does by the pod name in the user's extra fields).
   */
  user: string;
  /** Its name in the Lease (leaderIdentity of its pod name). */
  identity: string;
  operator: Operator;
  log: string[];
}

/** What every test starts, torn down in afterEach whatever happened. */
interface Cluster {
  server: KubeApiServer;
  kubelet: ProcessKubelet;
  /** Two, as the chart runs them: one leads, the other stands by. */
  replicas: Replica[];
  core: CoreV1Api;
  custom: CustomObjectsApi;
  /** The namespace's one PersistentVolumeClaim, `models`: the folder of this host that stands for it. */
  models: string;
}

/** The chart's Lease: in the operator's own namespace, named after the release. */
const lease = { namespace: "trainfleet", name: "trainfleet-operator" };
/**
 * A short lease, so that a hand-over takes seconds (the chart's is longer); the renew deadline
 * leaves a leader 2 s of a busy event loop (the test process serves the API and the kubelet too).
 */
const timing = { leaseDurationSeconds: 3, renewDeadlineMs: 2000, retryPeriodMs: 250 };

let cluster: Partial<Cluster> = {};
afterEach(async () => {
  const { replicas, kubelet, server, models } = cluster;
  cluster = {};
  // The standby first, so that no replica takes over from one stopped here.
  for (const replica of [...(replicas ?? [])].sort((a, b) => Number(a.operator.leading) - Number(b.operator.leading)))
    await replica.operator.stop();
  await kubelet?.close();
  await server?.close();
  if (models !== undefined) rmSync(models, { recursive: true, force: true });
});

/**
 * The API server (Leases served), the process kubelet, and two operator replicas electing a
 * leader. releaseOnStop false: stopping a replica leaves its Lease held, as a SIGKILL would.
 */
async function startCluster(election: { releaseOnStop?: boolean } = {}): Promise<Cluster> {
  const server = await startKubeApiServer({ resources: [...defaultResources, coordinationLeases] });
  cluster.server = server;
  // The "image": the wasm backend (the fastest here), and the data set where the tests find it.
  const env: Record<string, string> = { TRAINFLEET_BACKEND: "wasm" };
  for (const name of ["TRAINFLEET_DATA_DIR", "XDG_CACHE_HOME"]) if (process.env[name] !== undefined) env[name] = process.env[name];
  const models = mkdtempSync(join(tmpdir(), "trainfleet-claim-models-"));
  cluster.models = models;
  const kubelet = await ProcessKubelet.start(server.kubeConfig(namespace, "system:node:local"), {
    namespace,
    env,
    maxGraceMs: 5000,
    claims: { models },
  });
  cluster.kubelet = kubelet;
  const replicas: Replica[] = [];
  cluster.replicas = replicas;
  await Promise.all(
    ["trainfleet-operator-0", "trainfleet-operator-1"].map(async (user) => {
      const log: string[] = [];
      const identity = leaderIdentity(user);
      const operator = await Operator.start({
        kubeConfig: server.kubeConfig(namespace, user),
        logger: recordingLogger(log),
        namespaces: [namespace],
        statusPollMs: 200,
        informerBackoff: { initialMs: 50, maxMs: 400 },
        coordinatorUrl: (job) => kubelet.coordinatorUrl(job),
        leaderElection: { ...lease, identity, timing, ...election },
      });
      replicas.push({ user, identity, operator, log });
    }),
  );
  const config = server.kubeConfig(namespace);
  return {
    server,
    kubelet,
    replicas,
    core: config.makeApiClient(CoreV1Api),
    custom: config.makeApiClient(CustomObjectsApi),
    models,
  };
}

/** The replica that leads, once one does. */
const leaderOf = (c: Cluster) =>
  waitFor(
    c,
    "an operator replica leading",
    async () => {
      const leading = c.replicas.filter((replica) => replica.operator.leading);
      return leading.length === 1 ? leading[0] : undefined;
    },
    15_000,
  );

const readLease = (c: Cluster): Promise<V1Lease> =>
  c.server.kubeConfig(lease.namespace).makeApiClient(CoordinationV1Api).readNamespacedLease(lease);

/**
 * What a replica changed through the API, as "verb resource": its writes the server accepted (a
 * replica that lost the race to create the Lease was answered 409 Conflict, which changed nothing).
 */
const writesOf = (c: Cluster, replica: Replica) =>
  c.server.requests
    .entries({ user: replica.user })
    .filter((entry) => entry.verb !== undefined && !["get", "list", "watch"].includes(entry.verb) && entry.status < 400)
    .map((entry) => `${entry.verb} ${rbacResource(entry)}`);

/**
 * A succeeded job's Events, once its last is in: one per condition transition, from creation
 * (TrainingJobCreated) to success (Completed), each recorded once whichever replica recorded it.
 */
async function expectEachEventOnce(c: Cluster, job: string): Promise<void> {
  const events = await waitFor(
    c,
    `${job}'s Completed event`,
    async () => {
      const counts: Record<string, number> = {};
      for (const event of (await c.core.listNamespacedEvent({ namespace })).items)
        if (event.involvedObject.name === job) counts[event.reason!] = (counts[event.reason!] ?? 0) + (event.count ?? 1);
      return counts.Completed === undefined ? undefined : counts;
    },
    5000,
  );
  expect(Object.keys(events)).toEqual(expect.arrayContaining(["TrainingJobCreated", "Admitted", "Training", "JobSucceeded", "Completed"]));
  expect(events).toEqual(Object.fromEntries(Object.keys(events).map((reason) => [reason, 1])));
}

async function submit(c: Cluster, name: string, spec: Omit<TrainingJobSpec, "image">): Promise<void> {
  const body = {
    apiVersion: `${group}/${version}`,
    kind: "TrainingJob",
    metadata: { name, namespace },
    spec: { image: "trainfleet:local", ...spec },
  };
  await c.custom.createNamespacedCustomObject({ group, version, namespace, plural, body });
}

const getJob = async (c: Cluster, name: string) =>
  (await c.custom.getNamespacedCustomObject({ group, version, namespace, plural, name })) as TrainingJob;
const condition = (job: TrainingJob, type: string) => job.status?.conditions?.find((candidate) => candidate.type === type);

async function pods(c: Cluster, job: string): Promise<Map<string, V1Pod>> {
  const list = await c.core.listNamespacedPod({ namespace, labelSelector: `${labels.jobName}=${job}` });
  return new Map(list.items.map((pod) => [pod.metadata!.name!, pod]));
}

/** The job's read token, from the Secret the operator made (as `kubectl get secret JOB-tokens` shows it). */
async function readToken(c: Cluster, job: string): Promise<string> {
  const secret = await c.core.readNamespacedSecret({ name: `${job}-tokens`, namespace });
  return Buffer.from(secret.data!.read!, "base64").toString("utf8");
}

/** What the job's coordinator says now, read through its Service with the job's read token, as the operator reads it. */
async function coordinatorStatus(c: Cluster, job: TrainingJob): Promise<JobStatus> {
  const response = await fetch(`${c.kubelet.coordinatorUrl(job)}/v1/jobs/${job.metadata.name}`, {
    headers: { authorization: `Bearer ${await readToken(c, job.metadata.name)}` },
    signal: AbortSignal.timeout(2000),
  });
  if (!response.ok) throw new Error(`coordinator status: HTTP ${response.status}`);
  return fromJson(JobStatusSchema, (await response.json()) as JsonValue, { ignoreUnknownFields: true });
}

/** Polls `probe`; a failure says what every job, pod and the operator said. */
function waitFor<T>(c: Cluster, what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  return pollUntil(what, probe, timeoutMs, async () => {
    const jobs = (await c.custom.listNamespacedCustomObject({ group, version, namespace, plural }).catch(() => ({ items: [] }))) as {
      items: TrainingJob[];
    };
    const statuses = jobs.items.map((job) => `${job.metadata.name}: ${JSON.stringify(job.status)}`).join("\n");
    const replicas = c.replicas.map(
      ({ user, operator, log }) =>
        `${user} (leading: ${operator.leading}, reconciles: ${operator.reconciles}):\n${log.slice(-20).join("\n")}`,
    );
    return `jobs:\n${statuses}\noperators:\n${replicas.join("\n")}\npods:\n${c.kubelet.describe()}`;
  });
}

const waitForJob = (c: Cluster, name: string, what: string, test: (job: TrainingJob) => boolean, timeoutMs = 40_000) =>
  waitFor(
    c,
    what,
    async () => {
      const job = await getJob(c, name);
      return test(job) ? job : undefined;
    },
    timeoutMs,
  );

const isTrue = (job: TrainingJob, type: string, reason?: string) =>
  condition(job, type)?.status === "True" && (reason === undefined || condition(job, type)?.reason === reason);

/**
 * The pods ended as a finished job's do. The coordinator keeps serving its final status until the
 * operator deletes its pod (cleanPodPolicy Running). The shards and workers, told by the
 * coordinator to stop, exit 0 within the operator's grace and keep their Succeeded pods.
 */
async function expectEndedByTheJob(c: Cluster, job: string, names: string[]): Promise<void> {
  const others = names.filter((candidate) => candidate !== `${job}-coordinator`);
  const now = await waitFor(
    c,
    "the coordinator's pod deleted and every other pod Succeeded",
    async () => {
      const current = await pods(c, job);
      return !current.has(`${job}-coordinator`) && others.every((name) => current.get(name)?.status?.phase === "Succeeded")
        ? current
        : undefined;
    },
    20_000,
  );
  expect(c.kubelet.process(`${job}-coordinator`)!.terminatedAt).toBeDefined();
  for (const name of others) {
    const ended = c.kubelet.process(name)!;
    const stop = ended.lines
      .map((line) => JSON.parse(line) as { msg: string; reason?: string })
      .find((line) => line.msg === "told to stop" || line.msg === "stopping");
    expect(stop, `${name} was stopped by the coordinator`).toMatchObject({ reason: "Completed" });
    const pod = now.get(name)!;
    expect([pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, ended.exit?.exitCode, ended.deleted], name).toEqual([
      0,
      0,
      false,
    ]);
  }
}

/** The trained model is in the job's own folder of the claim, and status.output says so. */
async function expectModelInClaim(c: Cluster, job: TrainingJob, maxSteps: number): Promise<void> {
  const name = job.metadata.name;
  const folder = `${name}-${job.metadata.uid}`;
  const files = ["parameters.f32", "parameters.json", "model.json", "weights.bin", "status.json"];
  const { writtenAt, ...output } = job.status!.output!;
  expect(output).toEqual({ claimName: "models", path: folder, files });
  // When the coordinator ended the job: by the time the operator saw it at the latest.
  expect(Date.parse(writtenAt)).toBeLessThanOrEqual(Date.parse(job.status!.completionTime!));
  const read = (file: string) => readFileSync(join(c.models, folder, file));
  const parameters = read("parameters.f32");
  const layout = JSON.parse(read("parameters.json").toString()) as { jobId: string; version: number; parameterCount: number };
  expect(layout).toMatchObject({ jobId: name, version: maxSteps });
  expect(parameters.length).toBe(layout.parameterCount * 4);
  // model.json (what tf.loadLayersModel reads) names weights.bin, which holds the trained parameters themselves (an MLP's are its weights, in order).
  const model = JSON.parse(read("model.json").toString()) as { format: string; weightsManifest: { paths: string[] }[] };
  expect(model.format).toBe("layers-model");
  expect(model.weightsManifest.map((group) => group.paths)).toEqual([["weights.bin"]]);
  expect(read("weights.bin").equals(parameters)).toBe(true);
  // status.json is the coordinator's final status, as its status API served it.
  const final = jobStatusFromJson(JSON.parse(read("status.json").toString()));
  expect([final.jobId, final.phase, final.step, final.testAccuracy]).toEqual([name, JobPhase.SUCCEEDED, maxSteps, job.status!.accuracy]);
  // Its final word went to the termination log the kubelet gave it (its pod was deleted first: only the kubelet read it).
  expect(JSON.parse(c.kubelet.process(`${name}-coordinator`)!.terminationMessage!)).toMatchObject({
    kind: "trainfleet.dev/job-end",
    phase: "Succeeded",
    reason: "Completed",
  });
}

/** A short run: the default model (an MLP with 256 hidden units), global batch 2 x 32, 1 shard. */
const training = { batchSizePerWorker: 32, evalSamples: 1000, seed: 5 };

describe("operator + real trainfleet processes as pods, on the in-process test API server (no real kube-apiserver or kubelet can run here)", () => {
  it("runs the job's pods as processes that train it over mutual TLS with the credentials of the operator's Secrets: the job succeeds with the coordinator's step, accuracy and replicas in its status, and its trained model in the output claim", async () => {
    const c = await startCluster();
    const maxSteps = 150;
    await submit(c, "fmnist", {
      workers: { replicas: 2 },
      parameterServers: { replicas: 1 },
      training: { ...training, maxSteps },
      output: { persistentVolumeClaim: { claimName: "models" } },
    });

    // Every pod the operator made runs as a process, and the coordinator they make trains.
    const running = await waitForJob(
      c,
      "fmnist",
      "Running=True (Training) with 2 ready replicas",
      (job) => isTrue(job, "Running", "Training") && job.status?.readyReplicas === 2,
    );
    expect([...(await pods(c, "fmnist")).keys()].sort()).toEqual(podsOf("fmnist", 1, 2).sort());
    for (const name of podsOf("fmnist", 1, 2)) expect(c.kubelet.pid(name), name).toBeGreaterThan(0);
    expect(running.status).toMatchObject({
      phase: "Running",
      replicas: 2,
      readyReplicas: 2,
      coordinatorEndpoint: `fmnist-coordinator.${namespace}.svc:7080`,
    });
    const during = await coordinatorStatus(c, running);
    // Secure by default: every process runs mutual TLS with the certificate of its own Secret,
    // and the status API answers only with the job's token (the operator read it with its own).
    const identities = podsOf("fmnist", 1, 2).map((name) => {
      const line = c.kubelet.process(name)!.lines.find((candidate) => candidate.includes(`"msg":"mutual TLS with the job's CA"`));
      return line === undefined ? `${name}: no mutual TLS` : (JSON.parse(line) as { identity: string }).identity;
    });
    expect(identities).toEqual([
      "spiffe://trainfleet/job/fmnist/coordinator/coordinator",
      "spiffe://trainfleet/job/fmnist/parameter-server/ps-0",
      "spiffe://trainfleet/job/fmnist/worker/fmnist-worker-0",
      "spiffe://trainfleet/job/fmnist/worker/fmnist-worker-1",
    ]);
    for (const process of c.kubelet.processes) expect(process.output(), process.name).not.toMatch(/plaintext/);
    const open = await fetch(`${c.kubelet.coordinatorUrl(running)}/v1/jobs/fmnist`, { signal: AbortSignal.timeout(2000) });
    expect(open.status).toBe(401);
    const secrets = (await c.core.listNamespacedSecret({ namespace })).items;
    expect(secrets.map((secret) => [secret.metadata!.name, secret.metadata!.ownerReferences?.[0]?.uid]).sort()).toEqual(
      ["fmnist-coordinator-tls", "fmnist-ps-0-tls", "fmnist-tls-ca", "fmnist-tokens", "fmnist-worker-0-tls", "fmnist-worker-1-tls"].map(
        (name) => [name, running.metadata.uid],
      ),
    );
    // The operator's log never holds a key or a token.
    const log = c.replicas.flatMap((replica) => replica.log).join("\n");
    expect(log).not.toContain("PRIVATE KEY");
    expect(log).not.toContain(await readToken(c, "fmnist"));
    // The workers the coordinator knows are the worker pods (each reports its pod name as its host).
    expect(during.workers.map((worker) => [worker.host, worker.state, worker.backend]).sort()).toEqual([
      ["fmnist-worker-0", WorkerState.TRAINING, "wasm"],
      ["fmnist-worker-1", WorkerState.TRAINING, "wasm"],
    ]);

    const done = await waitForJob(c, "fmnist", "Succeeded=True", (job) => isTrue(job, "Succeeded"));
    expect(done.status).toMatchObject({ phase: "Succeeded", step: maxSteps, epoch: 0, trainingReplicas: 2 });
    expect(done.status!.accuracy).toBeGreaterThan(0.7);
    expect(done.status!.loss).toBeGreaterThan(0);
    expect(condition(done, "Running")).toMatchObject({ status: "False", reason: "JobSucceeded" });
    expect(condition(done, "Succeeded")!.reason).toBe("Completed");
    // The numbers are the coordinator's final report (it lingers serving it until the operator deletes its pod).
    const evaluated = c.kubelet.process("fmnist-coordinator")!.lines.find((line) => line.includes(`"msg":"evaluation complete"`));
    expect(JSON.parse(evaluated!)).toMatchObject({ step: maxSteps, testAccuracy: done.status!.accuracy });

    // Every process ends, none was started twice, and the shards and workers ended because the job did.
    await waitFor(c, "every process to exit", async () => c.kubelet.processes.every((p) => p.exit !== undefined), 15_000);
    expect(c.kubelet.processes).toHaveLength(4);
    for (const name of podsOf("fmnist", 1, 2)) expect(c.kubelet.starts(name), name).toBe(1);
    await expectEndedByTheJob(c, "fmnist", podsOf("fmnist", 1, 2));
    expect(c.kubelet.errors).toEqual([]);

    await expectModelInClaim(c, done, maxSteps);

    // Exactly one replica led, throughout: the Lease never changed hands, and the standby wrote nothing.
    const leading = c.replicas.filter((replica) => replica.operator.leading);
    expect(leading.map((replica) => replica.user)).toHaveLength(1);
    const leader = leading[0]!;
    const standby = c.replicas.find((replica) => replica !== leader)!;
    expect((await readLease(c)).spec).toMatchObject({ holderIdentity: leader.identity, leaseTransitions: 0 });
    expect(standby.operator.reconciles).toBe(0);
    expect(writesOf(c, standby)).toEqual([]);
    expect(writesOf(c, leader)).toEqual(expect.arrayContaining(["create pods", "patch trainingjobs/status"]));
    // Every Event of the job once: two replicas record nothing twice.
    await expectEachEventOnce(c, "fmnist");
  }, 60_000);

  it("hands a training job over to the standby when the leader is killed: the standby takes the Lease and carries the job on to Succeeded, no pod restarted, every Event once, the model in the output claim", async () => {
    // releaseOnStop false: stopping the leader leaves its Lease held, as a SIGKILL would.
    const c = await startCluster({ releaseOnStop: false });
    // Long enough that the job still trains when the standby took over, a lease (3 s) after the kill.
    const maxSteps = 600;
    await submit(c, "handover", {
      workers: { replicas: 1 },
      parameterServers: { replicas: 1 },
      training: { ...training, maxSteps },
      output: { persistentVolumeClaim: { claimName: "models" } },
    });
    const names = podsOf("handover", 1, 1);
    await waitForJob(
      c,
      "handover",
      "Running=True (Training) past step 0",
      (job) => isTrue(job, "Running", "Training") && (job.status?.step ?? 0) > 0,
    );
    const uids = async () => new Map([...(await pods(c, "handover"))].map(([name, pod]) => [name, pod.metadata!.uid!]));
    const before = await uids();
    expect([...before.keys()].sort()).toEqual(names.sort());
    const leader = await leaderOf(c);
    const standby = c.replicas.find((replica) => replica !== leader)!;
    expect(writesOf(c, standby)).toEqual([]);

    await leader.operator.stop();
    const lastSeen = (await getJob(c, "handover")).status!.step!;
    await waitFor(c, "the standby leading", async () => standby.operator.leading, 10_000);
    expect((await readLease(c)).spec).toMatchObject({ holderIdentity: standby.identity, leaseTransitions: 1 });
    // The hand-over came mid-training: the new leader reports steps the old one never saw, with the same pods.
    const carried = await waitForJob(
      c,
      "handover",
      "a later step in the status, from the new leader",
      (job) => isTrue(job, "Running", "Training") && job.status!.step! > lastSeen && job.status!.step! < maxSteps,
      15_000,
    );
    expect(writesOf(c, standby)).toContain("patch trainingjobs/status");
    expect(await uids()).toEqual(before);

    // 600 steps take about 10 s here, and several times that on a loaded machine.
    const done = await waitForJob(c, "handover", "Succeeded=True", (job) => isTrue(job, "Succeeded"), 90_000);
    expect(done.status).toMatchObject({ phase: "Succeeded", step: maxSteps, trainingReplicas: 1 });
    expect(done.status!.step!).toBeGreaterThan(carried.status!.step!);
    expect(done.status!.restarts ?? 0).toBe(0);
    await waitFor(c, "every process to exit", async () => c.kubelet.processes.every((p) => p.exit !== undefined), 15_000);
    // One process per pod, each the one that ran before the hand-over: nothing was made again.
    expect(c.kubelet.processes.map((p) => [p.name, p.pod.metadata!.uid]).sort()).toEqual([...before].sort());
    await expectEndedByTheJob(c, "handover", names);
    expect(c.kubelet.errors).toEqual([]);
    // The new leader made no pod and no credential again (it deleted the coordinator's pod, as cleanPodPolicy Running says).
    expect(writesOf(c, standby).filter((call) => /^(create|update|patch) (pods|secrets)$/.test(call))).toEqual([]);
    await expectModelInClaim(c, done, maxSteps);
    // The new leader recorded again no Event its predecessor had, and its own once.
    await expectEachEventOnce(c, "handover");
  }, 150_000);

  it("worker pods that cannot load their data fail the job with the coordinator's reason and the data error, not a restart loop", async () => {
    const c = await startCluster();
    // The worker template points the workers (only) at an empty data folder: env merged by name into the operator's.
    const empty = mkdtempSync(join(tmpdir(), "trainfleet-no-data-"));
    await submit(c, "nodata", {
      workers: {
        replicas: 2,
        template: { spec: { containers: [{ name: "trainfleet", env: [{ name: "TRAINFLEET_DATA_DIR", value: empty }] }] } },
      },
      parameterServers: { replicas: 1 },
      training: { ...training, maxSteps: 50 },
    });
    const failed = await waitForJob(c, "nodata", "Failed=True (WorkerFailed)", (job) => isTrue(job, "Failed", "WorkerFailed"), 30_000);
    expect(condition(failed, "Failed")!.message).toMatch(/DataUnavailable/);
    expect(failed.status!.restarts).toBeUndefined();
    // Each worker process failed on its data (and, keeping the operator's env, reached the coordinator to say so).
    const workers = c.kubelet.processes.filter((process) => process.pod.metadata!.name!.startsWith("nodata-worker-"));
    expect(workers.length).toBeGreaterThanOrEqual(2);
    await waitFor(c, "every worker process to exit", async () => workers.every((process) => process.exit !== undefined), 15_000);
    for (const process of workers) {
      expect(process.exit?.exitCode, process.output()).toBe(1);
      expect(process.output(), "the data error in its log").toMatch(/Fashion-MNIST/);
      // FallbackToLogsOnError: nothing in its termination log, so its log's tail is its termination message.
      expect(process.terminationMessage, process.name).toMatch(/Fashion-MNIST/);
    }
    // The transition's Event is recorded right after the status that says it.
    const event = await waitFor(
      c,
      "a WorkerFailed event",
      async () =>
        (await c.core.listNamespacedEvent({ namespace })).items.find(
          (candidate) => candidate.involvedObject.name === "nodata" && candidate.reason === "WorkerFailed",
        ),
      5000,
    );
    expect(event.type).toBe("Warning");
    expect(c.kubelet.errors).toEqual([]);
  }, 60_000);

  it("scales a running job from 2 to 3 workers and down to 1 through the scale subresource: the new pod joins, the highest ranks leave, rank 0 keeps running, and the job succeeds", async () => {
    const c = await startCluster();
    const maxSteps = 450;
    await submit(c, "fmnist", { workers: { replicas: 2 }, parameterServers: { replicas: 1 }, training: { ...training, maxSteps } });
    const training2 = await waitForJob(
      c,
      "fmnist",
      "2 workers training",
      (job) => isTrue(job, "Running", "Training") && job.status?.readyReplicas === 2 && (job.status.step ?? 0) > 0,
    );
    const pids = { "fmnist-worker-0": c.kubelet.pid("fmnist-worker-0"), "fmnist-worker-1": c.kubelet.pid("fmnist-worker-1") };

    // kubectl scale trainingjob fmnist --replicas=3
    const scale = await c.custom.patchNamespacedCustomObjectScale(
      { group, version, namespace, plural, name: "fmnist", body: { spec: { replicas: 3 } } },
      mergePatch,
    );
    expect(scale).toMatchObject({ kind: "Scale", spec: { replicas: 3 } });
    const rescaling = await waitForJob(c, "fmnist", "Rescaling=True", (job) => isTrue(job, "Rescaling"), 10_000);
    expect(condition(rescaling, "Rescaling")!.reason).toMatch(/^(ScalingUp|WaitingForWorkers)$/);
    await waitFor(c, "a process for fmnist-worker-2", async () => c.kubelet.pid("fmnist-worker-2"), 10_000);

    // The new worker joins the running job: the coordinator trains on all three (a new generation, the global batch unchanged).
    const three = await waitFor(
      c,
      "the coordinator training on 3 workers",
      async () => {
        const status = await coordinatorStatus(c, rescaling);
        if (status.phase !== JobPhase.RUNNING)
          return status.phase === JobPhase.PENDING
            ? undefined
            : Promise.reject(new Error(`the job left RUNNING (${JobPhase[status.phase]}) before the third worker trained`));
        const hosts = status.workers.filter((worker) => worker.state === WorkerState.TRAINING).map((worker) => worker.host);
        return hosts.length === 3 ? { status, hosts } : undefined;
      },
      20_000,
    );
    expect(three.hosts.sort()).toEqual(["fmnist-worker-0", "fmnist-worker-1", "fmnist-worker-2"]);
    // The worker the scale-up added got a certificate of its own, from the job's CA.
    expect(c.kubelet.process("fmnist-worker-2")!.output()).toContain("spiffe://trainfleet/job/fmnist/worker/fmnist-worker-2");
    const added = await c.core.readNamespacedSecret({ name: "fmnist-worker-2-tls", namespace });
    expect(Object.keys(added.data!).sort()).toEqual(["ca.pem", "tls.crt", "tls.key"]);
    expect(three.status.generation).toBe(2);
    expect(three.status.step).toBeLessThan(maxSteps);
    const rescaled = await waitForJob(
      c,
      "fmnist",
      "Rescaling=False (Rescaled) with 3 ready replicas",
      (job) => condition(job, "Rescaling")?.reason === "Rescaled" && job.status?.readyReplicas === 3,
    );
    expect(condition(rescaled, "Rescaling")!.status).toBe("False");
    expect(rescaled.status).toMatchObject({ replicas: 3, readyReplicas: 3, trainingReplicas: 2 });
    expect(rescaled.status!.step!).toBeGreaterThanOrEqual(training2.status!.step!);
    const events = (await c.core.listNamespacedEvent({ namespace })).items
      .filter((event) => event.involvedObject.name === "fmnist")
      .map((event) => event.reason);
    expect(events).toEqual(expect.arrayContaining(["ScalingUp", "Rescaled"]));

    // Down to 1: the highest ranks go (their pods deleted, the processes stopped by SIGTERM), rank 0 stays.
    await c.custom.patchNamespacedCustomObjectScale(
      { group, version, namespace, plural, name: "fmnist", body: { spec: { replicas: 1 } } },
      mergePatch,
    );
    const one = await waitFor(
      c,
      "the coordinator training on worker-0 alone",
      async () => {
        const status = await coordinatorStatus(c, rescaling);
        if (status.phase !== JobPhase.RUNNING)
          return Promise.reject(new Error(`the job left RUNNING (${JobPhase[status.phase]}) before it scaled down`));
        const hosts = status.workers.filter((worker) => worker.state === WorkerState.TRAINING).map((worker) => worker.host);
        return hosts.length === 1 ? { status, hosts } : undefined;
      },
      20_000,
    );
    expect(one.hosts).toEqual(["fmnist-worker-0"]);
    expect(one.status.step).toBeLessThan(maxSteps);
    const scaledDown = await waitForJob(
      c,
      "fmnist",
      "Rescaled with 1 ready replica",
      (job) => condition(job, "Rescaling")?.reason === "Rescaled" && job.status?.readyReplicas === 1,
    );
    expect(scaledDown.status).toMatchObject({ replicas: 1, trainingReplicas: 2 });
    expect(c.kubelet.process("fmnist-worker-1")!.deleted && c.kubelet.process("fmnist-worker-2")!.deleted).toBe(true);

    const done = await waitForJob(c, "fmnist", "Succeeded=True", (job) => isTrue(job, "Succeeded"), 60_000);
    expect(done.status).toMatchObject({ phase: "Succeeded", step: maxSteps });
    expect(done.spec.workers?.replicas).toBe(1);
    expect(done.status!.accuracy).toBeGreaterThan(0.7);
    // No worker was restarted: rank 0 is the process that started first, through both scales.
    expect(c.kubelet.pid("fmnist-worker-0")).toBe(pids["fmnist-worker-0"]);
    for (const name of podsOf("fmnist", 1, 3)) expect(c.kubelet.starts(name), name).toBe(1);
    await waitFor(c, "every process to exit", async () => c.kubelet.processes.every((p) => p.exit !== undefined), 15_000);
    await expectEndedByTheJob(c, "fmnist", podsOf("fmnist", 1, 1));
    expect(c.kubelet.errors).toEqual([]);
  }, 90_000);
});

describe("the process kubelet, as a kubelet and a scheduler would report a pod", () => {
  it("leaves a pod whose claim does not exist Pending and unscheduled, and reports a failed container's log tail as its termination message", async () => {
    const c = await startCluster();
    const container = { name: "trainfleet", image: "trainfleet:local", terminationMessagePolicy: "FallbackToLogsOnError" };
    const create = (name: string, spec: V1PodSpec) =>
      c.core.createNamespacedPod({ namespace, body: { apiVersion: "v1", kind: "Pod", metadata: { name, namespace }, spec } });
    await create("no-claim", {
      restartPolicy: "Never",
      containers: [{ ...container, args: ["coordinator"], volumeMounts: [{ name: "out", mountPath: "/out" }] }],
      volumes: [{ name: "out", persistentVolumeClaim: { claimName: "missing" } }],
    });
    await create("bad-flag", { restartPolicy: "Never", containers: [{ ...container, args: ["coordinator", "--no-such-flag"] }] });
    const podWhen = (name: string, what: string, test: (pod: V1Pod) => boolean) =>
      waitFor(
        c,
        `${name}: ${what}`,
        async () => {
          const pod = await c.core.readNamespacedPod({ name, namespace });
          return test(pod) ? pod : undefined;
        },
        15_000,
      );

    const pending = await podWhen("no-claim", "a PodScheduled condition", (pod) => pod.status?.conditions !== undefined);
    expect(pending.status?.phase).toBe("Pending");
    expect(pending.status?.conditions).toEqual([
      expect.objectContaining({
        type: "PodScheduled",
        status: "False",
        reason: "Unschedulable",
        message: '0/1 nodes are available: persistentvolumeclaim "missing" not found.',
      }),
    ]);
    expect(c.kubelet.starts("no-claim")).toBe(0);
    const failed = await podWhen("bad-flag", "Failed", (pod) => pod.status?.phase === "Failed");
    expect(failed.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
      exitCode: 1,
      message: expect.stringMatching(/unknown flag --no-such-flag/),
    });
  }, 30_000);
});
