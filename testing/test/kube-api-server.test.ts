/**
 * The in-process Kubernetes API server that the operator is tested against (no real
 * kube-apiserver can run here), driven by the real @kubernetes/client-node 1.4.0: CRUD and
 * patches with each content type, 409s with their Status, the /status and /scale subresources
 * of TrainingJob, informers through watches, dropped watches, 410 and re-list, garbage
 * collection, finalizers and injected faults.
 */

import type { Informer, KubernetesObject, ObjectCache, V1Pod } from "@kubernetes/client-node";
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubernetesObjectApi,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  Watch,
} from "@kubernetes/client-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { KubeApiServer, ResourceDefinition } from "../src/k8s/kube-api-server/index.js";
import { defaultResources, rbacResource, startKubeApiServer, trainingJobs, volcanoPodGroups } from "../src/k8s/kube-api-server/index.js";
import { allows, loadOperatorPermissions } from "../src/k8s/operator-permissions.js";

const namespace = "training";
const group = "trainfleet.dev";
const version = "v1alpha1";
const plural = "trainingjobs";
const tj = { group, version, namespace, plural };

interface TrainingJob extends KubernetesObject {
  spec: { workers: { replicas: number }; [key: string]: unknown };
  status?: Record<string, unknown>;
}

function trainingJob(name: string, replicas = 2): TrainingJob {
  return { apiVersion: `${group}/${version}`, kind: "TrainingJob", metadata: { name }, spec: { workers: { replicas }, model: "mlp" } };
}

function pod(name: string, labels: Record<string, string> = {}, extra: Partial<V1Pod["metadata"]> = {}): V1Pod {
  return { metadata: { name, labels, ...extra }, spec: { containers: [{ name: "worker", image: "trainfleet/worker:test" }] } };
}

/** The ApiException a call rejects with, and the Status object its body carries. */
async function rejection(
  call: Promise<unknown>,
): Promise<{ code: number; status: Record<string, unknown>; headers: Record<string, string> }> {
  const error: unknown = await call.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ApiException);
  const exception = error as ApiException<string>;
  return { code: exception.code, status: JSON.parse(exception.body) as Record<string, unknown>, headers: exception.headers };
}

function mergePatch() {
  return setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
}

let server: KubeApiServer;
let core: CoreV1Api;
let custom: CustomObjectsApi;
const informers: Informer<KubernetesObject>[] = [];

beforeEach(async () => {
  server = await startKubeApiServer();
  const config = server.kubeConfig(namespace);
  core = config.makeApiClient(CoreV1Api);
  custom = config.makeApiClient(CustomObjectsApi);
});

afterEach(async () => {
  // client-node 1.4.0 reports "The user aborted a request" to `error` handlers on stop(); the tests' handlers only record.
  for (const informer of informers.splice(0)) await informer.stop();
  await server.close();
});

/** An informer on pods in the namespace, recording what it tells its handlers. */
function podInformer(): { informer: Informer<V1Pod> & ObjectCache<V1Pod>; seen: string[]; errors: unknown[] } {
  const informer = makeInformer(server.kubeConfig(namespace), `/api/v1/namespaces/${namespace}/pods`, () =>
    core.listNamespacedPod({ namespace }),
  );
  const seen: string[] = [];
  const errors: unknown[] = [];
  informer.on("add", (object) => seen.push(`add ${object.metadata?.name}`));
  informer.on("update", (object) => seen.push(`update ${object.metadata?.name}`));
  informer.on("delete", (object) => seen.push(`delete ${object.metadata?.name}`));
  informer.on("error", (error) => errors.push(error));
  informers.push(informer as unknown as Informer<KubernetesObject>);
  return { informer, seen, errors };
}

function cachedNames(informer: ObjectCache<V1Pod>): string[] {
  return informer
    .list(namespace)
    .map((object) => object.metadata?.name ?? "")
    .sort();
}

// Each test takes well under a second; a hung watch (headers not flushed) fails in 10 s, not 60.
describe("the in-process Kubernetes API server (no real kube-apiserver can run here)", { timeout: 10_000 }, () => {
  describe("objects through CoreV1Api", () => {
    it("creates, gets, lists, replaces and deletes pods, with uid, creationTimestamp, generation and a global resourceVersion", async () => {
      const created = await core.createNamespacedPod({ namespace, body: pod("worker-0", { app: "trainfleet" }) });
      expect(created.metadata?.namespace).toBe(namespace);
      expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
      expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date);
      expect(created.metadata?.generation).toBe(1);
      const service = await core.createNamespacedService({
        namespace,
        body: { metadata: { name: "coordinator" }, spec: { ports: [{ port: 7000 }] } },
      });
      expect(Number(service.metadata?.resourceVersion)).toBe(Number(created.metadata?.resourceVersion) + 1);

      const read = await core.readNamespacedPod({ name: "worker-0", namespace });
      expect(read.metadata?.resourceVersion).toBe(created.metadata?.resourceVersion);
      const list = await core.listNamespacedPod({ namespace });
      expect(list.items.map((item) => item.metadata?.name)).toEqual(["worker-0"]);
      expect(list.metadata?.resourceVersion).toBe(server.resourceVersion());

      read.metadata!.labels = { app: "trainfleet", role: "worker" };
      const replaced = await core.replaceNamespacedPod({ name: "worker-0", namespace, body: read });
      expect(replaced.metadata?.labels).toEqual({ app: "trainfleet", role: "worker" });
      expect(replaced.metadata?.generation).toBe(1);
      expect(Number(replaced.metadata?.resourceVersion)).toBeGreaterThan(Number(read.metadata?.resourceVersion));

      const deleted = await core.deleteNamespacedPod({ name: "worker-0", namespace });
      expect(deleted.metadata?.name).toBe("worker-0");
      expect((await rejection(core.readNamespacedPod({ name: "worker-0", namespace }))).status).toMatchObject({
        kind: "Status",
        reason: "NotFound",
        code: 404,
        message: 'pods "worker-0" not found',
      });
      // Config maps and events answer a delete with a Success Status, as the real server does.
      await core.createNamespacedConfigMap({ namespace, body: { metadata: { name: "settings" }, data: { a: "1" } } });
      await core.createNamespacedEvent({
        namespace,
        body: { metadata: { name: "tj.1" }, involvedObject: { name: "tj" }, reason: "Started", message: "started" },
      });
      expect(await core.deleteNamespacedConfigMap({ name: "settings", namespace })).toMatchObject({
        kind: "Status",
        status: "Success",
        details: { name: "settings", kind: "configmaps" },
      });
    });

    it("answers a duplicate create with 409 AlreadyExists and a stale replace with 409 Conflict, as ApiException with the Status body", async () => {
      const created = await core.createNamespacedPod({ namespace, body: pod("worker-0") });
      const duplicate = await rejection(core.createNamespacedPod({ namespace, body: pod("worker-0") }));
      expect(duplicate.code).toBe(409);
      expect(duplicate.status).toEqual({
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message: 'pods "worker-0" already exists',
        reason: "AlreadyExists",
        details: { name: "worker-0", kind: "pods" },
        code: 409,
      });

      await core.patchNamespacedPod({ name: "worker-0", namespace, body: { metadata: { labels: { moved: "on" } } } }, mergePatch());
      const stale = await rejection(core.replaceNamespacedPod({ name: "worker-0", namespace, body: created }));
      expect(stale.code).toBe(409);
      expect(stale.status).toMatchObject({
        reason: "Conflict",
        message:
          'Operation cannot be fulfilled on pods "worker-0": the object has been modified; please apply your changes to the latest version and try again',
        details: { name: "worker-0", kind: "pods" },
      });
    });

    it("names an object from generateName and rejects a create with neither name (422)", async () => {
      const created = await core.createNamespacedPod({
        namespace,
        body: { metadata: { generateName: "worker-" }, spec: { containers: [] } },
      });
      expect(created.metadata?.name).toMatch(/^worker-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
      const nameless = await rejection(core.createNamespacedPod({ namespace, body: { metadata: {}, spec: { containers: [] } } }));
      expect(nameless.code).toBe(422);
      expect(nameless.status).toMatchObject({ reason: "Invalid", details: { causes: [{ field: "metadata.name" }] } });
    });

    it("filters lists by label selector (equality, sets, existence) and by metadata.name", async () => {
      await core.createNamespacedPod({ namespace, body: pod("coordinator", { role: "coordinator", job: "a" }) });
      await core.createNamespacedPod({ namespace, body: pod("ps-0", { role: "ps", job: "a" }) });
      await core.createNamespacedPod({ namespace, body: pod("worker-0", { role: "worker", job: "a", gpu: "yes" }) });
      await core.createNamespacedPod({ namespace, body: pod("worker-b", { role: "worker", job: "b" }) });
      const names = async (query: { labelSelector?: string; fieldSelector?: string }) =>
        (await core.listNamespacedPod({ namespace, ...query })).items.map((item) => item.metadata?.name);
      expect(await names({ labelSelector: "job=a" })).toEqual(["coordinator", "ps-0", "worker-0"]);
      expect(await names({ labelSelector: "job==a,role!=worker" })).toEqual(["coordinator", "ps-0"]);
      expect(await names({ labelSelector: "role in (ps, coordinator)" })).toEqual(["coordinator", "ps-0"]);
      expect(await names({ labelSelector: "role notin (ps,coordinator),!gpu" })).toEqual(["worker-b"]);
      expect(await names({ labelSelector: "gpu" })).toEqual(["worker-0"]);
      expect(await names({ fieldSelector: "metadata.name=ps-0" })).toEqual(["ps-0"]);
      expect((await rejection(core.listNamespacedPod({ namespace, fieldSelector: "spec.unknown=x" }))).status).toMatchObject({
        code: 400,
        reason: "BadRequest",
        message: "field label not supported: spec.unknown",
      });
      expect((await core.listPodForAllNamespaces({ labelSelector: "job=b" })).items.map((item) => item.metadata?.namespace)).toEqual([
        namespace,
      ]);
    });
  });

  describe("patches, by explicit content type", () => {
    it("applies merge, strategic merge (merge semantics) and JSON patches to a pod, and logs each content type", async () => {
      await core.createNamespacedPod({ namespace, body: pod("worker-0", { a: "1", b: "2" }) });
      const merged = await core.patchNamespacedPod(
        { name: "worker-0", namespace, body: { metadata: { labels: { a: null, c: "3" } } } },
        mergePatch(),
      );
      expect(merged.metadata?.labels).toEqual({ b: "2", c: "3" });
      const strategic = await core.patchNamespacedPod(
        { name: "worker-0", namespace, body: { metadata: { annotations: { note: "x" } } } },
        setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
      );
      expect(strategic.metadata?.annotations).toEqual({ note: "x" });
      const jsonPatched = await core.patchNamespacedPod(
        {
          name: "worker-0",
          namespace,
          body: [
            { op: "test", path: "/metadata/labels/b", value: "2" },
            { op: "replace", path: "/metadata/labels/b", value: "two" },
            { op: "add", path: "/metadata/labels/d~1e", value: "4" },
            { op: "remove", path: "/metadata/annotations/note" },
          ],
        },
        setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
      );
      expect(jsonPatched.metadata?.labels).toEqual({ b: "two", c: "3", "d/e": "4" });
      expect(jsonPatched.metadata?.annotations).toEqual({});
      expect(server.requests.entries({ verb: "patch" }).map((entry) => [entry.contentType, entry.status])).toEqual([
        ["application/merge-patch+json", 200],
        ["application/strategic-merge-patch+json", 200],
        ["application/json-patch+json", 200],
      ]);
    });

    it("refuses a failed JSON patch test (422), an unknown type (415), and strategic merge on a custom resource (415)", async () => {
      await core.createNamespacedPod({ namespace, body: pod("worker-0", { a: "1" }) });
      const failedTest = await rejection(
        core.patchNamespacedPod(
          { name: "worker-0", namespace, body: [{ op: "test", path: "/metadata/labels/a", value: "2" }] },
          setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
        ),
      );
      expect(failedTest.status).toMatchObject({ code: 422, reason: "Invalid" });
      const unknown = await rejection(
        core.patchNamespacedPod({ name: "worker-0", namespace, body: {} }, setHeaderOptions("Content-Type", "application/json")),
      );
      expect(unknown.status).toMatchObject({ code: 415, reason: "UnsupportedMediaType" });
      await custom.createNamespacedCustomObject({ ...tj, body: trainingJob("mnist") });
      const strategic = await rejection(
        custom.patchNamespacedCustomObject(
          { ...tj, name: "mnist", body: { spec: { model: "cnn" } } },
          setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
        ),
      );
      expect(strategic.code).toBe(415);
    });

    it("treats a patch sent without a content type as JSON Patch (client-node's default), so a merge-style body is a 400", async () => {
      await core.createNamespacedPod({ namespace, body: pod("worker-0") });
      const unset = await rejection(core.patchNamespacedPod({ name: "worker-0", namespace, body: { metadata: { labels: { a: "1" } } } }));
      expect(unset.status).toMatchObject({ code: 400, reason: "BadRequest" });
      expect(server.requests.entries({ verb: "patch" })[0]?.contentType).toBe("application/json-patch+json");
    });
  });

  describe("TrainingJob through CustomObjectsApi", () => {
    it("requires metadata.resourceVersion on replace (422) and bumps generation for spec changes only", async () => {
      const created = (await custom.createNamespacedCustomObject({
        ...tj,
        body: { ...trainingJob("mnist"), status: { phase: "Running" } },
      })) as TrainingJob;
      expect(created.status).toBeUndefined();
      expect(created.metadata?.generation).toBe(1);
      const { resourceVersion: _dropped, ...withoutVersion } = created.metadata!;
      const unconditional = await rejection(
        custom.replaceNamespacedCustomObject({ ...tj, name: "mnist", body: { ...created, metadata: withoutVersion } }),
      );
      expect(unconditional.status).toMatchObject({ code: 422, reason: "Invalid" });

      const labelled = (await custom.patchNamespacedCustomObject(
        { ...tj, name: "mnist", body: { metadata: { labels: { team: "a" } } } },
        mergePatch(),
      )) as TrainingJob;
      expect(labelled.metadata?.generation).toBe(1);
      const respecced = (await custom.replaceNamespacedCustomObject({
        ...tj,
        name: "mnist",
        body: { ...labelled, spec: { ...labelled.spec, model: "cnn" } },
      })) as TrainingJob;
      expect(respecced.metadata?.generation).toBe(2);
      const stale = await rejection(custom.replaceNamespacedCustomObject({ ...tj, name: "mnist", body: labelled }));
      expect(stale.status).toMatchObject({ code: 409, reason: "Conflict", details: { name: "mnist", group, kind: plural } });
      // Replacing with what is stored is a no-op: no new resourceVersion.
      const same = (await custom.replaceNamespacedCustomObject({ ...tj, name: "mnist", body: respecced })) as TrainingJob;
      expect(same.metadata?.resourceVersion).toBe(respecced.metadata?.resourceVersion);
    });

    it("changes only .status through /status, ignores .status on the main resource, and does not bump generation", async () => {
      await custom.createNamespacedCustomObject({ ...tj, body: trainingJob("mnist") });
      const patched = (await custom.patchNamespacedCustomObjectStatus(
        { ...tj, name: "mnist", body: { spec: { workers: { replicas: 9 } }, status: { phase: "Running", readyReplicas: 2 } } },
        mergePatch(),
      )) as TrainingJob;
      expect(patched.status).toEqual({ phase: "Running", readyReplicas: 2 });
      expect(patched.spec.workers.replicas).toBe(2);
      expect(patched.metadata?.generation).toBe(1);

      const replacedStatus = (await custom.replaceNamespacedCustomObjectStatus({
        ...tj,
        name: "mnist",
        body: { ...patched, status: { phase: "Succeeded" } },
      })) as TrainingJob;
      expect(replacedStatus.status).toEqual({ phase: "Succeeded" });
      const mainIgnoresStatus = (await custom.patchNamespacedCustomObject(
        { ...tj, name: "mnist", body: { status: { phase: "Failed" } } },
        mergePatch(),
      )) as TrainingJob;
      expect(mainIgnoresStatus.status).toEqual({ phase: "Succeeded" });
      expect(mainIgnoresStatus.metadata?.resourceVersion).toBe(replacedStatus.metadata?.resourceVersion);
      expect(((await custom.getNamespacedCustomObjectStatus({ ...tj, name: "mnist" })) as TrainingJob).status).toEqual({
        phase: "Succeeded",
      });
      expect(server.requests.entries({ subresource: "status" }).map((entry) => `${entry.verb} ${rbacResource(entry)}`)).toEqual([
        "patch trainingjobs/status",
        "update trainingjobs/status",
        "get trainingjobs/status",
      ]);
    });

    it("maps /scale to .spec.workers.replicas, .status.replicas and .status.selector (what kubectl scale and an HPA use)", async () => {
      await custom.createNamespacedCustomObject({ ...tj, body: trainingJob("mnist", 2) });
      await custom.patchNamespacedCustomObjectStatus(
        { ...tj, name: "mnist", body: { status: { replicas: 2, selector: "trainfleet.dev/job=mnist" } } },
        mergePatch(),
      );
      const scale = await custom.getNamespacedCustomObjectScale({ ...tj, name: "mnist" });
      expect(scale).toMatchObject({
        kind: "Scale",
        apiVersion: "autoscaling/v1",
        metadata: { name: "mnist", namespace },
        spec: { replicas: 2 },
        status: { replicas: 2, selector: "trainfleet.dev/job=mnist" },
      });

      // kubectl scale tj mnist --replicas=4 sends this merge patch to /scale.
      const scaled = await custom.patchNamespacedCustomObjectScale({ ...tj, name: "mnist", body: { spec: { replicas: 4 } } }, mergePatch());
      expect(scaled).toMatchObject({ kind: "Scale", spec: { replicas: 4 } });
      const job = (await custom.getNamespacedCustomObject({ ...tj, name: "mnist" })) as TrainingJob;
      expect(job.spec.workers.replicas).toBe(4);
      expect(job.metadata?.generation).toBe(2);

      const replaced = await custom.replaceNamespacedCustomObjectScale({
        ...tj,
        name: "mnist",
        body: { ...(scaled as object), spec: { replicas: 1 } },
      });
      expect(replaced).toMatchObject({ spec: { replicas: 1 } });
      const stale = await rejection(
        custom.replaceNamespacedCustomObjectScale({ ...tj, name: "mnist", body: { ...(scaled as object), spec: { replicas: 3 } } }),
      );
      expect(stale.status).toMatchObject({ code: 409, reason: "Conflict" });
      const negative = await rejection(
        custom.patchNamespacedCustomObjectScale({ ...tj, name: "mnist", body: { spec: { replicas: -1 } } }, mergePatch()),
      );
      expect(negative.status).toMatchObject({ code: 422, reason: "Invalid" });
      expect((await rejection(core.connectGetNamespacedPodProxy({ name: "x", namespace }))).code).toBe(404);
    });

    it("serves discovery, so client-node's KubernetesObjectApi can create and read a TrainingJob by kind", async () => {
      const objects = KubernetesObjectApi.makeApiClient(server.kubeConfig(namespace));
      const created = await objects.create<TrainingJob>({ ...trainingJob("generic"), metadata: { name: "generic", namespace } });
      expect(created.metadata?.uid).toBeDefined();
      const read = await objects.read({ apiVersion: `${group}/${version}`, kind: "TrainingJob", metadata: { name: "generic", namespace } });
      expect((read as TrainingJob).spec.workers.replicas).toBe(2);
      expect(server.requests.entries({ method: "GET" }).map((entry) => entry.path)).toContain(`/apis/${group}/${version}`);
    });
  });

  describe("watches and informers", () => {
    it("flushes a watch's headers at once, so an informer's start() resolves with its watch open, then delivers ADDED, MODIFIED, DELETED in order", async () => {
      await core.createNamespacedPod({ namespace, body: pod("before") });
      const { informer, seen } = podInformer();
      await informer.start();
      expect(server.openWatches()).toBe(1);
      expect(seen).toEqual(["add before"]);

      await core.createNamespacedPod({ namespace, body: pod("worker-0") });
      await core.patchNamespacedPod({ name: "worker-0", namespace, body: { metadata: { labels: { ready: "yes" } } } }, mergePatch());
      await core.deleteNamespacedPod({ name: "worker-0", namespace });
      await expect.poll(() => seen).toEqual(["add before", "add worker-0", "update worker-0", "delete worker-0"]);
      expect(cachedNames(informer)).toEqual(["before"]);
      expect(server.requests.entries({ verb: "watch" })[0]?.query).toMatch(/^watch=true&resourceVersion=\d+$/);
    });

    it("after dropped watches, the informer emits error and stops; restarted, it resumes from its resourceVersion and catches up", async () => {
      await core.createNamespacedPod({ namespace, body: pod("a") });
      await core.createNamespacedPod({ namespace, body: pod("b") });
      const { informer, seen, errors } = podInformer();
      await informer.start();
      expect(server.dropWatches()).toBe(1);
      await expect.poll(() => errors.length).toBe(1);
      // node-fetch's body reports the cut chunked stream; the informer hands that to `error` and stops.
      expect(errors[0]).toMatchObject({ message: "Premature close", code: "ERR_STREAM_PREMATURE_CLOSE" });
      expect(server.openWatches()).toBe(0);

      // While it is stopped, the cluster moves on.
      await core.createNamespacedPod({ namespace, body: pod("c") });
      await core.patchNamespacedPod({ name: "a", namespace, body: { metadata: { labels: { x: "1" } } } }, mergePatch());
      await core.deleteNamespacedPod({ name: "b", namespace });
      expect(seen).toEqual(["add a", "add b"]);

      await informer.start();
      await expect.poll(() => seen).toEqual(["add a", "add b", "add c", "update a", "delete b"]);
      expect(cachedNames(informer)).toEqual(["a", "c"]);
      // It resumed the watch from where it was: one list only.
      expect(server.requests.entries({ verb: "list" })).toHaveLength(1);
      expect(server.requests.entries({ verb: "watch" })).toHaveLength(2);
    });

    it("after a watch ends cleanly (a server-side timeout), the informer watches again by itself without an error", async () => {
      const { informer, seen, errors } = podInformer();
      await informer.start();
      expect(server.endWatches()).toBe(1);
      await expect.poll(() => server.openWatches()).toBe(1);
      await core.createNamespacedPod({ namespace, body: pod("a") });
      await expect.poll(() => seen).toEqual(["add a"]);
      expect(errors).toEqual([]);
    });

    it("after compaction and a dropped watch, the restarted informer's watch gets 410 Expired, it re-lists, and ends with the right cache", async () => {
      for (const name of ["a", "b", "c"]) await core.createNamespacedPod({ namespace, body: pod(name) });
      const { informer, seen, errors } = podInformer();
      await informer.start();
      server.dropWatches();
      await expect.poll(() => errors.length).toBe(1);

      await core.deleteNamespacedPod({ name: "a", namespace });
      await core.createNamespacedPod({ namespace, body: pod("d") });
      await core.patchNamespacedPod({ name: "b", namespace, body: { metadata: { labels: { x: "1" } } } }, mergePatch());
      server.compact();
      seen.length = 0;

      await informer.start();
      await expect.poll(() => server.requests.entries({ verb: "list" }).length).toBe(2);
      await expect.poll(() => cachedNames(informer)).toEqual(["b", "c", "d"]);
      expect(seen.sort()).toEqual(["add d", "delete a", "update b"]);
      expect(errors).toHaveLength(1);
      await expect.poll(() => server.openWatches()).toBe(1);
    });

    it("sends the 410 as an ERROR event with an Expired Status and ends the stream; an HTTP 410 also makes the informer re-list", async () => {
      await core.createNamespacedPod({ namespace, body: pod("a") });
      const old = server.resourceVersion();
      await core.createNamespacedPod({ namespace, body: pod("b") });
      server.compact();
      const events: { type: string; object: Record<string, unknown> }[] = [];
      const done = new Promise<unknown>((resolve) => {
        void new Watch(server.kubeConfig(namespace)).watch(
          `/api/v1/namespaces/${namespace}/pods`,
          { resourceVersion: old },
          (type, object) => events.push({ type, object }),
          resolve,
        );
      });
      expect(await done).toBeNull();
      expect(events).toEqual([
        {
          type: "ERROR",
          object: {
            kind: "Status",
            apiVersion: "v1",
            metadata: {},
            status: "Failure",
            message: `too old resource version: ${old} (${Number(server.resourceVersion()) + 1})`,
            reason: "Expired",
            code: 410,
          },
        },
      ]);

      const { informer, seen, errors } = podInformer();
      server.failNext({ verb: "watch", resource: "pods" }, { code: 410 });
      await informer.start();
      await expect.poll(() => server.requests.entries({ verb: "list" }).length).toBe(2);
      await expect.poll(() => server.openWatches()).toBe(1);
      expect(seen).toEqual(["add a", "add b"]);
      expect(errors).toEqual([]);
    });

    it("keeps only historyLimit changes: a watch from before them gets 410, one from within them replays", async () => {
      await server.close();
      server = await startKubeApiServer({ historyLimit: 2 });
      core = server.kubeConfig(namespace).makeApiClient(CoreV1Api);
      const start = server.resourceVersion();
      await core.createNamespacedPod({ namespace, body: pod("a") });
      const kept = server.resourceVersion();
      await core.createNamespacedPod({ namespace, body: pod("b") });
      await core.createNamespacedPod({ namespace, body: pod("c") });
      const replay = async (resourceVersion: string) => {
        const events: string[] = [];
        const controller = await new Watch(server.kubeConfig(namespace)).watch(
          `/api/v1/namespaces/${namespace}/pods`,
          { resourceVersion },
          (type, object: KubernetesObject) => events.push(`${type} ${object.metadata?.name ?? object.kind}`),
          () => undefined,
        );
        await expect.poll(() => events.length).toBe(resourceVersion === start ? 1 : 2);
        controller.abort();
        return events;
      };
      expect(await replay(start)).toEqual(["ERROR Status"]);
      expect(await replay(kept)).toEqual(["ADDED b", "ADDED c"]);
    });

    it("streams BOOKMARKs to watches that allow them, and turns selector exits and entries into DELETED and ADDED", async () => {
      const events: string[] = [];
      const watch = new Watch(server.kubeConfig(namespace));
      const controller = await watch.watch(
        `/api/v1/namespaces/${namespace}/pods`,
        { resourceVersion: server.resourceVersion(), allowWatchBookmarks: true, labelSelector: "role=worker" },
        (type, object: KubernetesObject) =>
          events.push(`${type} ${object.metadata?.name ?? ""} ${type === "BOOKMARK" ? object.metadata?.resourceVersion : ""}`.trim()),
        () => undefined,
      );
      await core.createNamespacedPod({ namespace, body: pod("w", { role: "worker" }) });
      await core.createNamespacedPod({ namespace, body: pod("p", { role: "ps" }) });
      await core.patchNamespacedPod({ name: "w", namespace, body: { metadata: { labels: { role: "idle" } } } }, mergePatch());
      await core.patchNamespacedPod({ name: "p", namespace, body: { metadata: { labels: { role: "worker" } } } }, mergePatch());
      server.bookmark();
      await expect.poll(() => events).toEqual(["ADDED w", "DELETED w", "ADDED p", `BOOKMARK  ${server.resourceVersion()}`]);
      controller.abort();
    });
  });

  describe("deletion: finalizers and garbage collection", () => {
    it("keeps an object with finalizers, with a deletionTimestamp, until they are removed", async () => {
      await core.createNamespacedPod({ namespace, body: pod("worker-0", {}, { finalizers: ["trainfleet.dev/drain"] }) });
      const { informer, seen } = podInformer();
      await informer.start();
      const deleting = await core.deleteNamespacedPod({ name: "worker-0", namespace });
      expect(deleting.metadata?.deletionTimestamp).toBeInstanceOf(Date);
      expect((await core.readNamespacedPod({ name: "worker-0", namespace })).metadata?.finalizers).toEqual(["trainfleet.dev/drain"]);
      const adding = await rejection(
        core.patchNamespacedPod(
          { name: "worker-0", namespace, body: { metadata: { finalizers: ["trainfleet.dev/drain", "other"] } } },
          mergePatch(),
        ),
      );
      expect(adding.status).toMatchObject({ code: 422, reason: "Invalid" });

      await core.patchNamespacedPod({ name: "worker-0", namespace, body: { metadata: { finalizers: null } } }, mergePatch());
      expect((await rejection(core.readNamespacedPod({ name: "worker-0", namespace }))).code).toBe(404);
      await expect.poll(() => seen).toEqual(["add worker-0", "update worker-0", "delete worker-0"]);
    });

    it("deletes a pod owned by a TrainingJob once the job is deleted (background), keeps it with Orphan, and waits for it with Foreground", async () => {
      const owned = async (jobName: string, podName: string) => {
        const job = (await custom.createNamespacedCustomObject({ ...tj, body: trainingJob(jobName) })) as TrainingJob;
        const ownerReferences = [
          {
            apiVersion: `${group}/${version}`,
            kind: "TrainingJob",
            name: jobName,
            uid: job.metadata!.uid!,
            controller: true,
            blockOwnerDeletion: true,
          },
        ];
        await core.createNamespacedPod({ namespace, body: pod(podName, {}, { ownerReferences }) });
      };
      await owned("background", "background-worker");
      await custom.deleteNamespacedCustomObject({ ...tj, name: "background" });
      await server.garbageCollected();
      expect((await rejection(core.readNamespacedPod({ name: "background-worker", namespace }))).code).toBe(404);

      await owned("orphan", "orphan-worker");
      await custom.deleteNamespacedCustomObject({ ...tj, name: "orphan", propagationPolicy: "Orphan" });
      await server.garbageCollected();
      expect((await core.readNamespacedPod({ name: "orphan-worker", namespace })).metadata?.ownerReferences).toBeUndefined();

      await owned("foreground", "foreground-worker");
      await core.patchNamespacedPod(
        { name: "foreground-worker", namespace, body: { metadata: { finalizers: ["trainfleet.dev/drain"] } } },
        mergePatch(),
      );
      const deleting = (await custom.deleteNamespacedCustomObject({
        ...tj,
        name: "foreground",
        propagationPolicy: "Foreground",
      })) as TrainingJob;
      expect(deleting.metadata?.finalizers).toEqual(["foregroundDeletion"]);
      await server.garbageCollected();
      expect(
        ((await custom.getNamespacedCustomObject({ ...tj, name: "foreground" })) as TrainingJob).metadata?.deletionTimestamp,
      ).toBeDefined();
      await core.patchNamespacedPod({ name: "foreground-worker", namespace, body: { metadata: { finalizers: null } } }, mergePatch());
      await server.garbageCollected();
      expect((await rejection(custom.getNamespacedCustomObject({ ...tj, name: "foreground" }))).code).toBe(404);
    });
  });

  describe("fault injection and the request log", () => {
    it("surfaces an injected 500 as an ApiException for the next matching request only, and a 429 with Retry-After", async () => {
      const fault = server.failNext({ verb: "create", resource: "pods" }, { code: 500, message: "etcdserver: request timed out" });
      const failed = await rejection(core.createNamespacedPod({ namespace, body: pod("worker-0") }));
      expect(failed.code).toBe(500);
      expect(failed.status).toMatchObject({ reason: "InternalError", message: "etcdserver: request timed out", code: 500 });
      expect(fault.remaining()).toBe(0);
      await core.createNamespacedPod({ namespace, body: pod("worker-0") });

      server.failNext({ verb: ["get", "list"], resource: plural }, { code: 429, times: 2, retryAfterSeconds: 1 });
      const throttled = await rejection(custom.listNamespacedCustomObject({ ...tj }));
      expect(throttled.headers["retry-after"]).toBe("1");
      expect(throttled.status).toMatchObject({ reason: "TooManyRequests", details: { retryAfterSeconds: 1 } });
      expect((await rejection(custom.getNamespacedCustomObject({ ...tj, name: "x" }))).code).toBe(429);
      expect((await rejection(custom.getNamespacedCustomObject({ ...tj, name: "x" }))).code).toBe(404);
    });

    it("makes an informer emit error and stop when its list or its watch gets an injected error (it does not retry)", async () => {
      server.failNext({ verb: "list", resource: "pods" }, { code: 503 });
      const { informer, errors } = podInformer();
      await informer.start();
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ code: 503 });
      server.failNext({ verb: "watch", resource: "pods" }, { code: 500 });
      await informer.start();
      expect(errors).toHaveLength(2);
      expect(errors[1]).toMatchObject({ statusCode: 500, message: "Internal Server Error" });
      expect(server.openWatches()).toBe(0);
      expect(server.requests.entries({ verb: "watch" }).map((entry) => [entry.status, entry.injected])).toEqual([[500, true]]);
    });

    it("logs each request in audit terms that operator-permissions' allows() can check, and can wait for one", async () => {
      const statusPatched = server.requests.waitFor({ verb: "patch", subresource: "status" }, AbortSignal.timeout(5000));
      await custom.createNamespacedCustomObject({ ...tj, body: trainingJob("mnist") });
      void custom.patchNamespacedCustomObjectStatus({ ...tj, name: "mnist", body: { status: { phase: "Running" } } }, mergePatch());
      expect(await statusPatched).toMatchObject({ name: "mnist", status: 200 });
      await custom.getNamespacedCustomObjectScale({ ...tj, name: "mnist" });
      const calls = server.requests
        .entries()
        .map((entry) => ({ apiGroup: entry.apiGroup ?? "", resource: rbacResource(entry), verb: entry.verb ?? "" }));
      expect(calls).toEqual([
        { apiGroup: group, resource: "trainingjobs", verb: "create" },
        { apiGroup: group, resource: "trainingjobs/status", verb: "patch" },
        { apiGroup: group, resource: "trainingjobs/scale", verb: "get" },
      ]);
      const rules = loadOperatorPermissions().rules;
      // The operator creates no TrainingJob and never reads /scale (kubectl scale and the CLI do).
      expect(calls.map((call) => allows(rules, call))).toEqual([false, true, false]);
      expect(server.requests.entries()[1]).toMatchObject({
        method: "PATCH",
        path: `/apis/${group}/${version}/namespaces/${namespace}/trainingjobs/mnist/status`,
        contentType: "application/merge-patch+json",
        status: 200,
        injected: false,
      });
    });
  });

  it("serves further resources from its table: Volcano PodGroups and a cluster-scoped resource", async () => {
    const queues: ResourceDefinition = {
      group: "scheduling.volcano.sh",
      version: "v1beta1",
      kind: "Queue",
      listKind: "QueueList",
      plural: "queues",
      singular: "queue",
      namespaced: false,
      status: true,
      custom: true,
      deleteReturnsObject: true,
    };
    await server.close();
    server = await startKubeApiServer({ resources: [...defaultResources, volcanoPodGroups, queues] });
    custom = server.kubeConfig(namespace).makeApiClient(CustomObjectsApi);
    const podGroup = { apiVersion: "scheduling.volcano.sh/v1beta1", kind: "PodGroup", metadata: { name: "mnist" }, spec: { minMember: 3 } };
    await custom.createNamespacedCustomObject({
      group: "scheduling.volcano.sh",
      version: "v1beta1",
      namespace,
      plural: "podgroups",
      body: podGroup,
    });
    await custom.createClusterCustomObject({
      group: "scheduling.volcano.sh",
      version: "v1beta1",
      plural: "queues",
      body: { apiVersion: "scheduling.volcano.sh/v1beta1", kind: "Queue", metadata: { name: "default" } },
    });
    const queue = (await custom.getClusterCustomObject({
      group: "scheduling.volcano.sh",
      version: "v1beta1",
      plural: "queues",
      name: "default",
    })) as KubernetesObject;
    expect(queue.metadata?.namespace).toBeUndefined();
    expect(server.object(trainingJobs, namespace, "mnist")).toBeUndefined();
    expect(server.object(volcanoPodGroups, namespace, "mnist")?.["spec"]).toEqual({ minMember: 3 });
  });
});
