/**
 * `trainfleet submit`, `get` and `scale`, run as the built binary (node cli/dist/main.js, a
 * child process) against the in-process Kubernetes API server of testing/src/kube-api-server
 * (no real kube-apiserver can run here; what only a real one does, such as the CRD's schema
 * validation and defaulting, is not covered). Each test writes kubeconfig files for its servers
 * (client-node's exportConfig()) and finds them as kubectl would: KUBECONFIG, HOME/.kube/config,
 * --kubeconfig, --context, the context's namespace.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { humanDuration, printerColumns } from "@trainfleet/cli";
import type { JsonObject } from "@trainfleet/k8s";
import { isJsonObject } from "@trainfleet/k8s";
import { cliMain } from "@trainfleet/testing/fleet/run-fleet";
import { loadCrd } from "@trainfleet/testing/k8s/crd-schema";
import type { KubeApiServer } from "@trainfleet/testing/k8s/kube-api-server/kube-api-server";
import { startKubeApiServer } from "@trainfleet/testing/k8s/kube-api-server/kube-api-server";
import { trainingJobs } from "@trainfleet/testing/k8s/kube-api-server/resource-table";
import { repoPath } from "@trainfleet/testing/manifests";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";

const group = "trainfleet.dev";
const version = "v1alpha1";
const plural = "trainingjobs";
const minimalYaml = repoPath("k8s", "examples", "minimal.yaml");

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a user with no Kubernetes configuration: an empty HOME, no KUBECONFIG, not in a pod. */
function bareEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, ...extra };
  for (const name of ["KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "POD_NAMESPACE"])
    if (!(name in extra)) delete env[name];
  return env;
}

/** The CLI as a child process (asynchronous: the API server answers from this process's event loop). */
async function trainfleet(args: string[], env: NodeJS.ProcessEnv): Promise<Result> {
  const child = spawn(process.execPath, [cliMain, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

interface ContextSpec {
  name: string;
  server: KubeApiServer;
  namespace?: string;
}

/** A kubeconfig (as client-node's exportConfig() writes it) with one cluster, user and context per entry. */
function kubeconfigText(contexts: readonly ContextSpec[], currentContext: string | undefined): string {
  const clusters: unknown[] = [];
  const users: unknown[] = [];
  const entries: unknown[] = [];
  for (const { name, server, namespace } of contexts) {
    const exported = JSON.parse(server.kubeConfig(namespace).exportConfig()) as {
      clusters: [{ cluster: unknown }];
      users: [{ user: unknown }];
      contexts: [{ context: JsonObject }];
    };
    clusters.push({ name, cluster: exported.clusters[0].cluster });
    users.push({ name, user: exported.users[0].user });
    const context: JsonObject = { ...exported.contexts[0].context, cluster: name, user: name };
    if (namespace === undefined) delete context["namespace"];
    entries.push({ name, context });
  }
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters,
    users,
    contexts: entries,
    preferences: {},
    ...(currentContext === undefined ? {} : { "current-context": currentContext }),
  });
}

let home: string;
let dir: string;
let servers: KubeApiServer[];

async function startServer(options: Parameters<typeof startKubeApiServer>[0] = {}): Promise<KubeApiServer> {
  const server = await startKubeApiServer(options);
  servers.push(server);
  return server;
}

/** Writes a kubeconfig file under the test's folder and returns its path. */
function writeKubeconfig(
  name: string,
  contexts: readonly ContextSpec[],
  currentContext: string | null = contexts[0]?.name ?? null,
): string {
  const path = join(dir, name);
  writeFileSync(path, kubeconfigText(contexts, currentContext ?? undefined));
  return path;
}

/** Requests that reached the server's TrainingJobs (discovery excluded). */
function trainingJobRequests(server: KubeApiServer) {
  return server.requests.entries({ resource: plural });
}

function writeYaml(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function trainingJobYaml(name: string, spec: string, metadata = ""): string {
  return `apiVersion: ${group}/${version}\nkind: TrainingJob\nmetadata:\n  name: ${name}\n${metadata}spec:\n  image: trainfleet:0.1.0\n${spec}`;
}

beforeEach(() => {
  servers = [];
  dir = mkdtempSync(join(tmpdir(), "trainfleet-k8s-cli-"));
  home = join(dir, "home");
  mkdirSync(home);
});

afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

describe("trainfleet submit, get and scale against the in-process test API server (no real kube-apiserver runs here)", {
  timeout: 60_000,
}, () => {
  describe("the printed columns", () => {
    it("are the CRD's additionalPrinterColumns: names, types and JSON paths, in order", () => {
      const versions = (loadCrd()["spec"] as JsonObject)["versions"] as JsonObject[];
      const columns = (versions[0]!["additionalPrinterColumns"] as JsonObject[]).map(({ name, type, jsonPath }) => ({
        name,
        type,
        jsonPath,
      }));
      expect(printerColumns.map(({ name, type, jsonPath }) => ({ name, type, jsonPath }))).toEqual(columns);
    });

    it.each([
      [0, "0s"],
      [-1500, "0s"],
      [-5000, "<invalid>"],
      [45_000, "45s"],
      [119_000, "119s"],
      [180_000, "3m"],
      [200_000, "3m20s"],
      [45 * 60_000, "45m"],
      [2 * 3_600_000, "120m"],
      [3 * 3_600_000, "3h"],
      [(3 * 60 + 30) * 60_000, "3h30m"],
      [30 * 3_600_000, "30h"],
      [5 * 86_400_000, "5d"],
      [(5 * 24 + 3) * 3_600_000, "5d3h"],
      [40 * 86_400_000, "40d"],
      [(3 * 365 + 10) * 86_400_000, "3y10d"],
      [10 * 365 * 86_400_000, "10y"],
    ])("AGE of %i ms is %s, as kubectl writes it", (milliseconds, text) => {
      expect(humanDuration(milliseconds)).toBe(text);
    });
  });

  describe("finding the cluster as kubectl does", () => {
    it("uses KUBECONFIG, and the context's namespace", async () => {
      const server = await startServer();
      const env = bareEnv(home, { KUBECONFIG: writeKubeconfig("config", [{ name: "test", server, namespace: "training" }]) });
      const { code, stdout, stderr } = await trainfleet(["get"], env);
      expect(stderr).toBe("No resources found in training namespace.\n");
      expect(stdout).toBe("");
      expect(code).toBe(0);
      expect(trainingJobRequests(server).map((entry) => [entry.verb, entry.namespace])).toEqual([["list", "training"]]);
    });

    it("uses the namespace default when the context names none, and --namespace over the context's", async () => {
      const server = await startServer();
      const env = bareEnv(home, { KUBECONFIG: writeKubeconfig("config", [{ name: "test", server }]) });
      expect((await trainfleet(["get"], env)).stderr).toBe("No resources found in default namespace.\n");
      expect((await trainfleet(["get", "--namespace", "research"], env)).stderr).toBe("No resources found in research namespace.\n");
      expect(trainingJobRequests(server).map((entry) => entry.namespace)).toEqual(["default", "research"]);
    });

    it("uses HOME/.kube/config when KUBECONFIG is not set", async () => {
      const server = await startServer();
      mkdirSync(join(home, ".kube"));
      // Written by hand as YAML, with no insecure-skip-tls-verify: kubectl talks plain http to an http:// server, and so does trainfleet.
      const yaml = [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "  - name: home",
        "    cluster:",
        `      server: ${server.url}`,
        "users:",
        "  - name: home",
        "    user: {}",
        "contexts:",
        "  - name: home",
        "    context:",
        "      cluster: home",
        "      user: home",
        "      namespace: from-home",
        "current-context: home",
        "",
      ].join("\n");
      writeFileSync(join(home, ".kube", "config"), yaml);
      const { code, stderr } = await trainfleet(["get"], bareEnv(home));
      expect(stderr).toBe("No resources found in from-home namespace.\n");
      expect(code).toBe(0);
      expect(trainingJobRequests(server)).toHaveLength(1);
    });

    it("uses --kubeconfig over KUBECONFIG and HOME/.kube/config", async () => {
      const [chosen, other] = [await startServer(), await startServer()];
      mkdirSync(join(home, ".kube"));
      writeFileSync(join(home, ".kube", "config"), kubeconfigText([{ name: "home", server: other }], "home"));
      const env = bareEnv(home, { KUBECONFIG: writeKubeconfig("other", [{ name: "other", server: other }]) });
      const { code, stderr } = await trainfleet(
        ["get", "--kubeconfig", writeKubeconfig("chosen", [{ name: "chosen", server: chosen, namespace: "picked" }])],
        env,
      );
      expect(stderr).toBe("No resources found in picked namespace.\n");
      expect(code).toBe(0);
      expect(trainingJobRequests(chosen)).toHaveLength(1);
      expect(trainingJobRequests(other)).toHaveLength(0);
    });

    it("--context chooses between two contexts (two servers), each with its namespace", async () => {
      const [alpha, beta] = [await startServer(), await startServer()];
      const env = bareEnv(home, {
        KUBECONFIG: writeKubeconfig(
          "config",
          [
            { name: "alpha", server: alpha, namespace: "training" },
            { name: "beta", server: beta, namespace: "research" },
          ],
          "alpha",
        ),
      });
      expect((await trainfleet(["get"], env)).stderr).toBe("No resources found in training namespace.\n");
      expect((await trainfleet(["get", "--context", "beta"], env)).stderr).toBe("No resources found in research namespace.\n");
      expect(trainingJobRequests(alpha).map((entry) => entry.namespace)).toEqual(["training"]);
      expect(trainingJobRequests(beta).map((entry) => entry.namespace)).toEqual(["research"]);
    });

    it("merges the files of KUBECONFIG as kubectl does: the first to define a name or current-context wins, missing files are skipped", async () => {
      const [first, second] = [await startServer(), await startServer()];
      // Both files define context "shared" and set current-context; client-node's loadFromDefault would take the second's
      // current-context and throw on the duplicate names.
      const firstFile = writeKubeconfig("first", [{ name: "shared", server: first, namespace: "one" }], "shared");
      const secondFile = writeKubeconfig(
        "second",
        [
          { name: "shared", server: second, namespace: "two" },
          { name: "only-second", server: second, namespace: "three" },
        ],
        "only-second",
      );
      const env = bareEnv(home, { KUBECONFIG: [join(dir, "missing"), firstFile, secondFile].join(":") });
      expect((await trainfleet(["get"], env)).stderr).toBe("No resources found in one namespace.\n");
      expect((await trainfleet(["get", "--context", "only-second"], env)).stderr).toBe("No resources found in three namespace.\n");
      expect(trainingJobRequests(first).map((entry) => entry.namespace)).toEqual(["one"]);
      expect(trainingJobRequests(second).map((entry) => entry.namespace)).toEqual(["three"]);
    });

    it("says how to fix a missing configuration, an unknown context, a missing --kubeconfig file and a missing current-context", async () => {
      const server = await startServer();
      const none = await trainfleet(["get"], bareEnv(home));
      expect(none.code).toBe(1);
      expect(none.stderr).toContain("no Kubernetes configuration found");
      expect(none.stderr).toContain(
        `Pass --kubeconfig FILE, set KUBECONFIG to your cluster's kubeconfig, or put it at ${join(home, ".kube", "config")}`,
      );

      const config = writeKubeconfig("config", [
        { name: "alpha", server },
        { name: "beta", server },
      ]);
      const unknown = await trainfleet(["get", "--context", "gamma"], bareEnv(home, { KUBECONFIG: config }));
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain(
        `--context gamma: no such context in KUBECONFIG (${config}) (defined: alpha, beta); pass --context with one of those`,
      );

      const missing = await trainfleet(["get", "--kubeconfig", join(dir, "nowhere")], bareEnv(home));
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain(`--kubeconfig ${join(dir, "nowhere")}: no such file`);

      const noCurrent = writeKubeconfig("no-current", [{ name: "alpha", server }], null);
      const unset = await trainfleet(["get"], bareEnv(home, { KUBECONFIG: noCurrent }));
      expect(unset.code).toBe(1);
      expect(unset.stderr).toContain("sets no current-context: pass --context NAME (defined: alpha)");
      expect(trainingJobRequests(server)).toEqual([]);
    });

    it("says which server it could not reach", async () => {
      const server = await startServer();
      const config = writeKubeconfig("config", [{ name: "gone", server }]);
      await server.close();
      servers.splice(servers.indexOf(server), 1);
      const { code, stderr } = await trainfleet(["get"], bareEnv(home, { KUBECONFIG: config }));
      expect(code).toBe(1);
      expect(stderr).toContain(
        `cannot list trainingjobs in namespace default: cannot reach the API server at ${server.url} (context gone of KUBECONFIG (${config}))`,
      );
      expect(stderr).toContain("ECONNREFUSED");
    });
  });

  describe("submit", () => {
    let server: KubeApiServer;
    let env: NodeJS.ProcessEnv;

    beforeEach(async () => {
      server = await startServer();
      env = bareEnv(home, { KUBECONFIG: writeKubeconfig("config", [{ name: "test", server, namespace: "training" }]) });
    });

    it("creates k8s/examples/minimal.yaml in the context's namespace, and refuses it a second time with AlreadyExists", async () => {
      const first = await trainfleet(["submit", minimalYaml], env);
      expect(first.stderr).toBe("");
      expect(first.stdout).toBe("trainingjob.trainfleet.dev/fashion-mnist created\n");
      expect(first.code).toBe(0);
      const stored = server.object(trainingJobs, "training", "fashion-mnist");
      expect(stored?.["spec"]).toEqual({});
      expect((stored?.["metadata"] as JsonObject | undefined)?.["namespace"]).toBe("training");
      const creates = server.requests.entries({ verb: "create", resource: plural });
      expect(creates.map((entry) => [entry.path, entry.status])).toEqual([
        [`/apis/${group}/${version}/namespaces/training/${plural}`, 201],
      ]);

      const second = await trainfleet(["submit", minimalYaml], env);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(
        "trainingjob.trainfleet.dev/fashion-mnist already exists in namespace training: delete it first (kubectl delete trainingjob fashion-mnist -n training), or give this one another metadata.name (ALREADY_EXISTS)",
      );
      expect(server.requests.entries({ verb: "create", resource: plural }).map((entry) => entry.status)).toEqual([201, 409]);
    });

    it("creates every document of a file, in metadata.namespace where one is given", async () => {
      const file = writeYaml(
        "two.yaml",
        `${trainingJobYaml("one", "")}---\n${trainingJobYaml("two", "  workers:\n    replicas: 3\n", "  namespace: research\n")}---\n`,
      );
      const { code, stdout } = await trainfleet(["submit", file], env);
      expect(stdout).toBe("trainingjob.trainfleet.dev/one created\ntrainingjob.trainfleet.dev/two created\n");
      expect(code).toBe(0);
      expect(server.object(trainingJobs, "training", "one")).toBeDefined();
      expect((server.object(trainingJobs, "research", "two")?.["spec"] as JsonObject | undefined)?.["workers"]).toEqual({ replicas: 3 });
    });

    it.each([
      [
        "a value out of the coordinator's range",
        "  training:\n    epochs: 20000\n",
        "spec.training.epochs: 20000 must be between 1 and 10000",
      ],
      [
        "a field the JobSpec names otherwise",
        "  workers:\n    replicas: 2\n  parameterServers:\n    placement: colocated\n    replicas: 3\n",
        "spec.parameterServers.replicas: 3 shards with colocated placement",
      ],
      [
        "an unknown field",
        "  training:\n    epocs: 2\n",
        "spec.training.epocs: unknown field; spec.training has epochs, batchSizePerWorker",
      ],
      [
        "a value of the wrong type",
        "  model:\n    mlp:\n      hiddenUnits: [256, wide]\n",
        'spec.model.mlp.hiddenUnits[1]: expected a whole number, 0 or more, got "wide"',
      ],
      [
        "an enum value the CRD does not have",
        "  parameterServers:\n    dataPlane: rdma\n",
        'spec.parameterServers.dataPlane: "rdma" is not one of tcp, grpc',
      ],
      [
        "a rule of the coordinator's, in the TrainingJob's words",
        "  parameterServers:\n    dataPlane: grpc\n    wireDtype: float16\n",
        "spec.parameterServers.wireDtype: 16-bit values travel on the TCP data channel only: use tcp",
      ],
    ])("refuses %s, naming the field, and creates nothing (not even the valid document before it)", async (_, spec, message) => {
      const file = writeYaml("jobs.yaml", `${trainingJobYaml("valid", "")}---\n${trainingJobYaml("invalid", spec)}`);
      const { code, stdout, stderr } = await trainfleet(["submit", file], env);
      expect(code).toBe(1);
      expect(stdout).toBe("");
      expect(stderr).toContain(`trainfleet: ${file}, document 2: trainingjob.trainfleet.dev/invalid: ${message}`);
      expect(server.requests.entries({ verb: "create" })).toEqual([]);
      expect(server.object(trainingJobs, "training", "valid")).toBeUndefined();
    });

    it("refuses other kinds, a missing metadata.name, and a metadata.namespace that --namespace contradicts", async () => {
      const deployment = writeYaml("deployment.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n");
      expect((await trainfleet(["submit", deployment], env)).stderr).toContain(
        'not a TrainingJob: apiVersion "apps/v1", kind "Deployment"',
      );
      const nameless = writeYaml(
        "nameless.yaml",
        "apiVersion: trainfleet.dev/v1alpha1\nkind: TrainingJob\nmetadata: {}\nspec:\n  image: x\n",
      );
      expect((await trainfleet(["submit", nameless], env)).stderr).toContain("metadata.name is required");
      const placed = writeYaml("placed.yaml", trainingJobYaml("placed", "", "  namespace: research\n"));
      const conflict = await trainfleet(["submit", placed, "--namespace", "training"], env);
      expect(conflict.code).toBe(1);
      expect(conflict.stderr).toContain(
        'the namespace from the provided object "research" does not match the namespace "training" given with --namespace',
      );
      expect(server.requests.entries({ verb: "create" })).toEqual([]);
    });

    it("--dry-run checks the examples and creates nothing, with no cluster needed", async () => {
      const examples = readdirSync(repoPath("k8s", "examples")).filter((name) => name.endsWith(".yaml"));
      expect(examples.length).toBeGreaterThanOrEqual(4);
      for (const example of examples) {
        const { code, stdout } = await trainfleet(["submit", repoPath("k8s", "examples", example), "--dry-run"], bareEnv(home));
        expect(code).toBe(0);
        expect(stdout).toMatch(/^trainingjob\.trainfleet\.dev\/[a-z-]+ created \(dry run\)\n$/);
      }
      expect(server.requests.entries()).toEqual([]);
    });
  });

  describe("scale", () => {
    let server: KubeApiServer;
    let env: NodeJS.ProcessEnv;

    beforeEach(async () => {
      server = await startServer();
      env = bareEnv(home, { KUBECONFIG: writeKubeconfig("config", [{ name: "test", server, namespace: "training" }]) });
      expect((await trainfleet(["submit", minimalYaml], env)).code).toBe(0);
    });

    it("sets spec.workers.replicas through the scale subresource with a merge patch (`scale NAME N`)", async () => {
      const { code, stdout, stderr } = await trainfleet(["scale", "fashion-mnist", "3"], env);
      expect(stderr).toBe("");
      expect(stdout).toBe("trainingjob.trainfleet.dev/fashion-mnist scaled\n");
      expect(code).toBe(0);
      const patches = server.requests.entries({ verb: "patch", resource: plural });
      expect(patches.map((entry) => [entry.path, entry.subresource, entry.contentType, entry.status])).toEqual([
        [`/apis/${group}/${version}/namespaces/training/${plural}/fashion-mnist/scale`, "scale", "application/merge-patch+json", 200],
      ]);
      expect((server.object(trainingJobs, "training", "fashion-mnist")?.["spec"] as JsonObject | undefined)?.["workers"]).toEqual({
        replicas: 3,
      });
    });

    it("says when the job does not exist", async () => {
      const { code, stderr } = await trainfleet(["scale", "nope", "--replicas", "2", "-n", "training"], env);
      expect(code).toBe(1);
      expect(stderr).toContain('trainingjob.trainfleet.dev "nope" not found in namespace training');
    });

    it("shows the API server's refusal with its message", async () => {
      const message =
        'TrainingJob.trainfleet.dev "fashion-mnist" is invalid: spec.workers.replicas: Invalid value: 9: must be at most workers.maxWorkers (4)';
      server.failNext({ verb: "patch", resource: plural, subresource: "scale" }, { code: 422, message });
      const { code, stderr } = await trainfleet(["scale", "fashion-mnist", "--replicas", "9"], env);
      expect(code).toBe(1);
      expect(stderr).toContain(
        `cannot scale trainingjob.trainfleet.dev/fashion-mnist in namespace training to 9: the API server at ${server.url} answered 422 Invalid: ${message}`,
      );
      expect((server.object(trainingJobs, "training", "fashion-mnist")?.["spec"] as JsonObject | undefined)?.["workers"]).toBeUndefined();
    });

    it("refuses a count below 1 before calling the server", async () => {
      const { code, stderr } = await trainfleet(["scale", "fashion-mnist", "--replicas", "0"], env);
      expect(code).toBe(1);
      expect(stderr).toContain('--replicas: expected an integer of at least 1, got "0"');
      expect(server.requests.entries({ verb: "patch" })).toEqual([]);
    });
  });

  describe("get", () => {
    const created = Date.now() - 5 * 86_400_000 - 60_000;
    let server: KubeApiServer;
    let env: NodeJS.ProcessEnv;

    beforeEach(async () => {
      // Objects created 5 days ago, by the server's clock.
      server = await startServer({ now: () => new Date(created) });
      env = bareEnv(home, { KUBECONFIG: writeKubeconfig("config", [{ name: "test", server, namespace: "training" }]) });
      const file = writeYaml(
        "jobs.yaml",
        `${trainingJobYaml("fashion-mnist", "  workers:\n    replicas: 2\n")}---\n${trainingJobYaml("idle", "")}---\n${trainingJobYaml("elsewhere", "", "  namespace: research\n")}`,
      );
      expect((await trainfleet(["submit", file], env)).code).toBe(0);
      const custom = server.kubeConfig("training").makeApiClient(CustomObjectsApi);
      await custom.patchNamespacedCustomObjectStatus(
        {
          group,
          version,
          plural,
          namespace: "training",
          name: "fashion-mnist",
          body: { status: { phase: "Running", readyReplicas: 2, epoch: 1, step: 420, loss: 0.4123 } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
    });

    it("prints the namespace's jobs with the CRD's columns, empty where a value is unset", async () => {
      const { code, stdout, stderr } = await trainfleet(["get"], env);
      expect(stderr).toBe("");
      expect(code).toBe(0);
      expect(stdout).toBe(
        [
          "NAME            PHASE     READY   DESIRED   EPOCH   STEP   LOSS     AGE",
          "fashion-mnist   Running   2       2         1       420    0.4123   5d",
          "idle                                                                5d",
          "",
        ].join("\n"),
      );
    });

    it("--all-namespaces adds the NAMESPACE column", async () => {
      const { code, stdout } = await trainfleet(["get", "-A"], env);
      expect(code).toBe(0);
      expect(stdout.split("\n").map((line) => line.split(/\s+/).slice(0, 3).join(" "))).toEqual([
        "NAMESPACE NAME PHASE",
        "research elsewhere 5d",
        "training fashion-mnist Running",
        "training idle 5d",
        "",
      ]);
      expect(trainingJobRequests(server).at(-1)?.path).toBe(`/apis/${group}/${version}/${plural}`);
    });

    it("NAME prints one; --output json and yaml print the object as the server has it", async () => {
      const one = await trainfleet(["get", "fashion-mnist"], env);
      expect(one.stdout.split("\n")).toHaveLength(3);
      expect(one.stdout).toContain("fashion-mnist   Running   2");
      const json = await trainfleet(["get", "fashion-mnist", "-o", "json"], env);
      expect(json.code).toBe(0);
      const stored = server.object(trainingJobs, "training", "fashion-mnist");
      expect(JSON.parse(json.stdout)).toEqual(stored);
      expect((JSON.parse(json.stdout) as JsonObject)["status"]).toEqual({
        phase: "Running",
        readyReplicas: 2,
        epoch: 1,
        step: 420,
        loss: 0.4123,
      });
      const yaml = await trainfleet(["get", "--output", "yaml"], env);
      const list = parseYaml(yaml.stdout) as JsonObject;
      expect(list["kind"]).toBe("List");
      expect(
        (list["items"] as JsonObject[]).map((item) => (isJsonObject(item["metadata"]) ? item["metadata"]["name"] : undefined)),
      ).toEqual(["fashion-mnist", "idle"]);
    });

    it("says when NAME does not exist, and when the namespace has none", async () => {
      const missing = await trainfleet(["get", "nope"], env);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('trainingjob.trainfleet.dev "nope" not found in namespace training');
      const empty = await trainfleet(["get", "--namespace", "empty"], env);
      expect(empty.code).toBe(0);
      expect(empty.stderr).toBe("No resources found in empty namespace.\n");
    });

    it("a 500 from the server on list is a clear error and a non-zero exit", async () => {
      server.failNext({ verb: "list", resource: plural }, { code: 500, message: "etcdserver: request timed out" });
      const { code, stdout, stderr } = await trainfleet(["get"], env);
      expect(code).toBe(1);
      expect(stdout).toBe("");
      expect(stderr).toBe(
        `trainfleet: cannot list trainingjobs in namespace training: the API server at ${server.url} answered 500 InternalError: etcdserver: request timed out (INTERNAL)\n`,
      );
      expect(server.requests.entries({ verb: "list", resource: plural }).at(-1)?.injected).toBe(true);
    });
  });
});
