/**
 * The operator meets creates the API server refuses, against the in-process test API server
 * with the real client-node: refusals answered as a real server's admission would (Pod Security,
 * a ResourceQuota, a missing PriorityClass: testing/src/k8s/kube-api-server/admission.ts) and
 * 500s. Each shows on the TrainingJob, in the pass that met it, as the condition CreateFailed with
 * the API server's message and a Warning Event with the same; it clears once the objects are
 * made; and a gang whose pods are never made times out from the first attempt.
 */
import type { CoreV1Event } from "@kubernetes/client-node";
import { missingPriorityClass, podSecurityViolation, quotaExceeded } from "@trainfleet/testing/k8s/kube-api-server/admission";
import { OperatorHarness, operatorUser, podsOf } from "@trainfleet/testing/k8s/operator/operator-harness";
import { createTrainingJobValidator } from "@trainfleet/testing/k8s/training-job-validator";
import { afterEach, describe, expect, it } from "vitest";
import type { JsonObject } from "../src/json.js";
import type { TrainingJob } from "../src/training-job.js";

let harness: OperatorHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const validate = createTrainingJobValidator();
const condition = (job: TrainingJob, type: string) => job.status?.conditions?.find((candidate) => candidate.type === type);
const statusPatches = (h: OperatorHarness, name: string) =>
  h.server.requests.entries({ user: operatorUser, verb: "patch", resource: "trainingjobs", subresource: "status", name }).length;
const eventsOf = (events: CoreV1Event[], reason: string) => events.filter((event) => event.reason === reason);
const reconcileFailures = (h: OperatorHarness) => h.logLines.filter((line) => line.includes("reconcile failed"));

const violation = 'allowPrivilegeEscalation != false (container "trainfleet" must set securityContext.allowPrivilegeEscalation=false)';
const podSecurityHint =
  "; the namespace's Pod Security level (label pod-security.kubernetes.io/enforce) refuses the pod: remove what a spec.*.template adds against it";

describe("the operator records what the API server refuses to create on the TrainingJob (in-process test API server)", () => {
  it("Pod Security refuses every pod: CreateFailed with the API server's message and one Warning Event, in the first pass; cleared once the pods are admitted", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    const podSecurity = h.server.addAdmissionCheck(({ resource, name }) =>
      resource.plural === "pods" ? podSecurityViolation(name, [violation]) : undefined,
    );
    await h.submit("restricted", { workers: { replicas: 1 }, parameterServers: { replicas: 1 } });
    const refused = await h.waitForCondition("restricted", "CreateFailed", "True", "PodSecurityViolation");
    const message = `creating Pod restricted-coordinator: pods "restricted-coordinator" is forbidden: violates PodSecurity "restricted:latest": ${violation}${podSecurityHint}`;
    expect(condition(refused, "CreateFailed")!.message).toBe(message);
    // The pass that met the refusal wrote it, with the job's first status: one status patch in all.
    expect(statusPatches(h, "restricted")).toBe(1);
    expect(refused.status).toMatchObject({ phase: "Admitted" });
    expect(condition(refused, "Created")).toMatchObject({ status: "True" });
    expect(validate(refused as unknown as JsonObject).violations).toEqual([]);
    const warning = eventsOf(await h.eventsWith("restricted", ["PodSecurityViolation"]), "PodSecurityViolation");
    expect(warning.map((event) => [event.type, event.message])).toEqual([["Warning", message]]);
    // A refusal is no failed reconcile: the job is looked at again as usual, and the same refusal records nothing new.
    const reconciles = h.operator!.reconciles;
    await h.waitFor("5 more reconciles", async () => h.operator!.reconciles >= reconciles + 5);
    expect(reconcileFailures(h)).toEqual([]);
    expect(eventsOf(await h.events("restricted"), "PodSecurityViolation")).toHaveLength(1);
    expect(statusPatches(h, "restricted")).toBe(1);
    expect(await h.podNames("restricted")).toEqual([]);
    expect(
      h.logLines.some((line) => line.includes(`could not create Pod restricted-coordinator: pods "restricted-coordinator" is forbidden`)),
    ).toBe(true);

    podSecurity.remove();
    await h.waitForPods("restricted", podsOf("restricted", 1, 1));
    const created = await h.waitForCondition("restricted", "CreateFailed", "False", "ObjectsCreated");
    expect(condition(created, "CreateFailed")!.message).toBe("every object the job needs now was created");
    expect(eventsOf(await h.eventsWith("restricted", ["ObjectsCreated"]), "ObjectsCreated")[0]!.type).toBe("Normal");
  });

  it("a ResourceQuota with no room for one worker, and one with no room for Secrets: what was refused is named, the rest is made", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    const use = { requested: ["requests.cpu=1"], used: ["requests.cpu=3"], limited: ["requests.cpu=3"] };
    const compute = h.server.addAdmissionCheck(({ resource, name }) =>
      resource.plural === "pods" && name === "quota-worker-1" ? quotaExceeded(resource, name, "compute", use) : undefined,
    );
    await h.submit("quota", { workers: { replicas: 2 }, parameterServers: { replicas: 1 } });
    const refused = await h.waitForCondition("quota", "CreateFailed", "True", "QuotaExceeded");
    expect(condition(refused, "CreateFailed")!.message).toBe(
      `creating Pod quota-worker-1: pods "quota-worker-1" is forbidden: exceeded quota: compute, requested: requests.cpu=1, used: requests.cpu=3, limited: requests.cpu=3; the namespace's ResourceQuota has no room: raise it, or ask for less (spec.coordinator, spec.parameterServers and spec.workers resources)`,
    );
    expect(await h.podNames("quota")).toEqual(["quota-coordinator", "quota-ps-0", "quota-worker-0"]);
    expect(eventsOf(await h.eventsWith("quota", ["QuotaExceeded"]), "QuotaExceeded")[0]!.type).toBe("Warning");
    compute.remove();
    await h.waitForCondition("quota", "CreateFailed", "False", "ObjectsCreated");
    expect(await h.podNames("quota")).toEqual(podsOf("quota", 1, 2));

    const secrets = h.server.addAdmissionCheck(({ resource, name }) =>
      resource.plural === "secrets"
        ? quotaExceeded(resource, name, "objects", {
            requested: ["count/secrets=1"],
            used: ["count/secrets=10"],
            limited: ["count/secrets=10"],
          })
        : undefined,
    );
    await h.submit("nosecrets", { workers: { replicas: 1 }, parameterServers: { replicas: 1 } });
    const noSecrets = await h.waitForCondition("nosecrets", "CreateFailed", "True", "QuotaExceeded");
    expect(condition(noSecrets, "CreateFailed")!.message).toMatch(
      /^creating the credentials of the job's new pods \(Secrets\): secrets "nosecrets-[a-z-]+" is forbidden: exceeded quota: objects, requested: count\/secrets=1/,
    );
    // No pod is made without the Secrets it mounts.
    expect(await h.podNames("nosecrets")).toEqual([]);
    secrets.remove();
    await h.waitForPods("nosecrets", podsOf("nosecrets", 1, 1));
    expect(reconcileFailures(h)).toEqual([]);
  });

  it("a gang whose every pod is refused (a missing PriorityClass) fails with GangTimeout, counted from the first attempt, saying why", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    h.server.addAdmissionCheck(({ resource, name, object }) => {
      const priorityClassName = (object["spec"] as { priorityClassName?: string } | undefined)?.priorityClassName;
      return resource.plural === "pods" && priorityClassName !== undefined ? missingPriorityClass(name, priorityClassName) : undefined;
    });
    await h.submit("nopriority", {
      workers: { replicas: 1 },
      parameterServers: { replicas: 1 },
      scheduling: { priorityClassName: "high", gang: { enabled: true, timeoutSeconds: 2 } },
    });
    const waiting = await h.waitForCondition("nopriority", "CreateFailed", "True", "Forbidden");
    expect(condition(waiting, "CreateFailed")!.message).toBe(
      'creating Pod nopriority-coordinator: pods "nopriority-coordinator" is forbidden: no PriorityClass with name high was found',
    );
    const since = Date.parse(condition(waiting, "Admitted")!.lastTransitionTime);
    expect(condition(waiting, "Admitted")).toMatchObject({ status: "False", reason: "WaitingForGang" });
    const failed = await h.waitForCondition("nopriority", "Failed", "True", "GangTimeout", 8000);
    expect(condition(failed, "Failed")!.message).toContain("nopriority-coordinator (not created yet)");
    expect(condition(failed, "Failed")!.message).toContain(
      'pods "nopriority-coordinator" is forbidden: no PriorityClass with name high was found',
    );
    // The wait began with the first attempt and was never started again.
    expect(Date.parse(condition(failed, "Admitted")!.lastTransitionTime)).toBe(since);
    expect(Date.parse(failed.status!.completionTime!) - since).toBeGreaterThanOrEqual(2000);
    expect(Date.parse(failed.status!.completionTime!) - since).toBeLessThanOrEqual(4000);
    expect(validate(failed as unknown as JsonObject).violations).toEqual([]);
    expect((await h.eventsWith("nopriority", ["GangTimeout"])).find((event) => event.reason === "GangTimeout")!.type).toBe("Warning");
  });

  it("pod creates answered 500 are on the job too (InternalError), and retried with backoff until they succeed", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    const webhookDown = 'Internal error occurred: failed calling webhook "validate.example.com": context deadline exceeded';
    const fault = h.server.failNext({ verb: "create", resource: "pods" }, { code: 500, times: 1_000_000, message: webhookDown });
    await h.submit("flaky", { workers: { replicas: 1 }, parameterServers: { replicas: 1 } });
    const failing = await h.waitForCondition("flaky", "CreateFailed", "True", "InternalError");
    expect(condition(failing, "CreateFailed")!.message).toBe(`creating Pod flaky-coordinator: ${webhookDown}`);
    await h.waitFor("the reconcile retried", async () => reconcileFailures(h).length > 0);
    fault.cancel();
    await h.waitForPods("flaky", podsOf("flaky", 1, 1));
    await h.waitForCondition("flaky", "CreateFailed", "False", "ObjectsCreated");
  });
});
