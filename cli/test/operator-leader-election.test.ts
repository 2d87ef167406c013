/**
 * `trainfleet operator --leader-elect`: the flags the chart passes (rendered by the real helm)
 * name the Lease in the release namespace; the namespace defaults to the pod's; bad values are
 * refused naming the flag. Then two real operator processes against the in-process test API
 * server (no real kube-apiserver can run here): one leads and only it writes, SIGKILL hands the
 * Lease to the other once it expires, and a leader whose Lease another identity took exits 1,
 * saying why, so that its Deployment starts it again.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoordinationV1Api, CustomObjectsApi } from "@kubernetes/client-node";
import { group, plural, version } from "@trainfleet/k8s";
import { chartOperatorArgs } from "@trainfleet/testing/fixtures/helm";
import { processGroup } from "@trainfleet/testing/fleet/fleet-process";
import { trainfleet } from "@trainfleet/testing/fleet/run-fleet";
import { coordinationLeases } from "@trainfleet/testing/k8s/kube-api-server/coordination-leases";
import type { KubeApiServer } from "@trainfleet/testing/k8s/kube-api-server/index";
import { defaultResources, startKubeApiServer } from "@trainfleet/testing/k8s/kube-api-server/index";
import { rbacResource } from "@trainfleet/testing/k8s/kube-api-server/request-log";
import { pollUntil } from "@trainfleet/testing/k8s/operator/polling";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { leaderElectionFromFlags, operatorCommand } from "../src/commands/operator.js";
import { parseFlags } from "../src/flags.js";

const electionOf = (argv: string[], env: Record<string, string> = {}, namespaceFile = "/nonexistent/namespace") =>
  leaderElectionFromFlags(parseFlags(operatorCommand.flags, argv, env), env, namespaceFile);

describe("--leader-elect and its flags", () => {
  it("name the release's Lease in its namespace, with the chart's timing, as the chart passes them", () => {
    const args = chartOperatorArgs(["--namespace", "ml-platform"]);
    expect(electionOf(args, { POD_NAME: "ops-trainfleet-7d9f-abcde" })).toEqual({
      namespace: "ml-platform",
      name: "ops-trainfleet",
      timing: { leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryPeriodMs: 2000 },
      podName: "ops-trainfleet-7d9f-abcde",
    });
  });

  it("are off by default; the Lease's namespace defaults to the pod's ($POD_NAMESPACE, else the service account's file)", () => {
    expect(electionOf([])).toBeUndefined();
    expect(electionOf(["--leader-elect"], { POD_NAMESPACE: "ops" })).toMatchObject({ namespace: "ops", name: "trainfleet-operator" });
    const file = join(mkdtempSync(join(tmpdir(), "trainfleet-sa-")), "namespace");
    writeFileSync(file, "platform\n");
    expect(electionOf(["--leader-elect"], {}, file)).toMatchObject({ namespace: "platform" });
    expect(electionOf(["--leader-elect", "--leader-election-namespace", "flagged"], { POD_NAMESPACE: "ops" }, file)).toMatchObject({
      namespace: "flagged",
    });
    expect(() => electionOf(["--leader-elect"])).toThrow(
      "--leader-elect: no namespace for the Lease: pass --leader-election-namespace NS (in a pod it defaults to the pod's namespace, from $POD_NAMESPACE or /nonexistent/namespace, and neither is here)",
    );
  });

  it.each([
    [["--leader-election-namespace", "Ops"], '--leader-election-namespace: "Ops" is not a namespace name'],
    [["--leader-election-id", "my_lease"], '--leader-election-id: "my_lease" is not a Lease name'],
    [
      ["--leader-election-renew-deadline", "15"],
      "--leader-election-renew-deadline (15 s) must be shorter than --leader-election-lease-duration (15 s)",
    ],
    [
      ["--leader-election-retry-period", "9"],
      "--leader-election-renew-deadline (10 s) must be longer than 1.2 x --leader-election-retry-period (9 s)",
    ],
    [["--leader-election-retry-period", "0"], "--leader-election-retry-period: must be positive, got 0"],
    [["--leader-election-lease-duration", "1.5"], '--leader-election-lease-duration: expected an integer of at least 1, got "1.5"'],
  ])("refuses %j, naming the flag", (argv, message) => {
    expect(() => electionOf(["--leader-elect", "--leader-election-namespace", "ops", ...argv])).toThrow(message);
  });

  it("refuses a listen address that is no host:port before connecting anywhere", async () => {
    const result = await trainfleet(["operator", "--health-listen", "8081"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('--health-listen: "8081" is not host:port (e.g. 0.0.0.0:8081, or :8081 for every interface');
    const same = await trainfleet(["operator", "--health-listen", ":8081", "--metrics-listen", ":8081"]);
    expect(same.stderr).toContain("--health-listen and --metrics-listen are both :8081: give them different ports");
  });
});

const { start, stop } = processGroup();
afterAll(stop);
let server: KubeApiServer | undefined;
afterEach(async () => {
  await stop();
  await server?.close();
  server = undefined;
});

const leaseNamespace = "trainfleet-system";
const namespace = "training";

describe("trainfleet operator --leader-elect, two real processes (in-process test API server: no real kube-apiserver can run here)", () => {
  it("lets one lead and write; after a SIGKILL the other takes over once the Lease expired; a leader whose Lease was taken exits 1", async () => {
    server = await startKubeApiServer({ resources: [...defaultResources, coordinationLeases] });
    const s = server;
    const dir = mkdtempSync(join(tmpdir(), "trainfleet-operators-"));
    const replica = (name: string) => {
      const kubeconfig = join(dir, name);
      writeFileSync(kubeconfig, s.kubeConfig(namespace, name).exportConfig());
      return start(name, [
        "operator",
        ...["--kubeconfig", kubeconfig, "--namespaces", namespace, "--status-poll-ms", "200"],
        ...["--leader-elect", "--leader-election-namespace", leaseNamespace],
        ...["--leader-election-lease-duration", "2", "--leader-election-renew-deadline", "1.5", "--leader-election-retry-period", "0.2"],
      ]);
    };
    const processes = { a: replica("a"), b: replica("b") };
    const identities = {
      a: String((await processes.a.log("waiting to lead"))["identity"]),
      b: String((await processes.b.log("waiting to lead"))["identity"]),
    };
    const coordination = s.kubeConfig(leaseNamespace).makeApiClient(CoordinationV1Api);
    const lease = () => coordination.readNamespacedLease({ name: "trainfleet-operator", namespace: leaseNamespace });
    const holder = async () => (await lease()).spec?.holderIdentity;
    const context = () => `a:\n${processes.a.output()}\nb:\n${processes.b.output()}`;
    const leaderName = async (): Promise<"a" | "b" | undefined> => {
      const current = await holder();
      return current === identities.a ? "a" : current === identities.b ? "b" : undefined;
    };
    const first = await pollUntil("a leader", leaderName, 10_000, context);
    const second = first === "a" ? "b" : "a";
    await processes[first].log("leading");

    // Only the leader writes: the job's pods are made by it (the test's own calls have no user).
    const custom = s.kubeConfig(namespace).makeApiClient(CustomObjectsApi);
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace,
      plural,
      body: {
        apiVersion: `${group}/${version}`,
        kind: "TrainingJob",
        metadata: { name: "mnist", namespace },
        spec: { image: "trainfleet:test" },
      },
    });
    await pollUntil(
      "the coordinator pod",
      async () => s.requests.entries({ verb: "create", resource: "pods" }).length > 0,
      10_000,
      context,
    );
    const writers = new Set(
      s.requests
        .entries({})
        .filter(
          (entry) =>
            entry.user !== undefined && !["get", "list", "watch"].includes(entry.verb ?? "get") && rbacResource(entry) !== "leases",
        )
        .map((entry) => entry.user),
    );
    expect([...writers]).toEqual([first]);

    // SIGKILL: the Lease is left held; the other waits for it to expire, then takes it.
    const renewedAt = new Date((await lease()).spec!.renewTime as unknown as string).getTime();
    processes[first].kill("SIGKILL");
    await processes[second].log("leading");
    const taken = (await lease()).spec!;
    expect(taken.holderIdentity).toBe(identities[second]);
    expect(taken.leaseTransitions).toBe(1);
    expect(new Date(taken.acquireTime as unknown as string).getTime() - renewedAt).toBeGreaterThanOrEqual(2000);

    // Another identity takes the Lease: the leader stops and exits 1, saying why.
    const current = await lease();
    await coordination.replaceNamespacedLease({
      name: "trainfleet-operator",
      namespace: leaseNamespace,
      body: { ...current, spec: { ...current.spec, holderIdentity: "intruder" } },
    });
    const exit = await processes[second].exited;
    expect(exit.code, processes[second].output()).toBe(1);
    expect(processes[second].output()).toContain(
      `trainfleet: lost the leader Lease ${leaseNamespace}/trainfleet-operator: intruder holds it now; this operator stops reconciling and exits, to be started again as a standby (ABORTED)`,
    );
  });
});
