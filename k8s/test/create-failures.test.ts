/**
 * What the API server answers instead of creating a job's objects, on the job (create-failures.ts):
 * each answer classified as the real server words it (Pod Security, ResourceQuota, a webhook's
 * denial, a missing PriorityClass or API, a 5xx), the CreateFailed condition and Warning Event
 * that the pass meeting it writes, cleared by the next pass that meets none; and the gang
 * deadline counting from the first attempt when every create is refused. Pure functions: the
 * operator's I/O around them is operator-create-failures.test.ts's.
 */
import { ApiException } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { CreateFailure } from "../src/create-failures.js";
import { createFailure, recordCreateOutcome } from "../src/create-failures.js";
import { reconcile } from "../src/reconcile.js";
import type { TrainingJobStatus } from "../src/training-job.js";
import { at, observed, reconcileOptions, stamp, trainingJob } from "./builders.js";

/** A failed client-node call, with the Status body the API server sends (client-node keeps it as text). */
function apiError(code: number, reason: string, message: string, details?: object): ApiException<string> {
  const status = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
  return new ApiException(code, "Unknown API Status Code!", JSON.stringify(status), { "content-type": "application/json" });
}

const podSecurity =
  'pods "mnist-coordinator" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "trainfleet" must set securityContext.allowPrivilegeEscalation=false)';
const quota = 'pods "mnist-worker-1" is forbidden: exceeded quota: compute, requested: cpu=1, used: cpu=2, limited: cpu=2';

describe("createFailure: the API server's answer, classified", () => {
  const rows: [string, unknown, Partial<CreateFailure>][] = [
    [
      "Pod Security",
      apiError(403, "Forbidden", podSecurity, { name: "mnist-coordinator", kind: "pods" }),
      { reason: "PodSecurityViolation", message: podSecurity, transient: false },
    ],
    ["a ResourceQuota", apiError(403, "Forbidden", quota), { reason: "QuotaExceeded", message: quota, transient: false }],
    [
      "a validating webhook",
      apiError(
        403,
        "Forbidden",
        'admission webhook "validation.gatekeeper.sh" denied the request: [require-team] you must provide labels: {"team"}',
      ),
      { reason: "AdmissionWebhookDenied", transient: false },
    ],
    [
      "a missing PriorityClass",
      apiError(403, "Forbidden", 'pods "mnist-coordinator" is forbidden: no PriorityClass with name high was found'),
      {
        reason: "Forbidden",
        message: 'pods "mnist-coordinator" is forbidden: no PriorityClass with name high was found',
        transient: false,
      },
    ],
    [
      "a PodGroup API that is not installed",
      apiError(404, "NotFound", "the server could not find the requested resource"),
      { reason: "NotFound", transient: false },
    ],
    [
      "an invalid object",
      apiError(
        422,
        "Invalid",
        'Pod "mnist-coordinator" is invalid: spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1',
      ),
      { reason: "Invalid", transient: false },
    ],
    [
      "a webhook that did not answer (5xx: retried with backoff)",
      apiError(500, "InternalError", 'Internal error occurred: failed calling webhook "validate.example.com": context deadline exceeded'),
      { reason: "InternalError", transient: true },
    ],
    ["throttling (429)", apiError(429, "TooManyRequests", "too many requests"), { reason: "TooManyRequests", transient: true }],
    [
      "no answer at all",
      new Error("request to https://10.96.0.1/api/v1/namespaces/ns/pods failed, reason: connect ECONNREFUSED"),
      { reason: "CreateError", transient: true },
    ],
  ];
  for (const [what, error, expected] of rows)
    it(`${what}: ${expected.reason}${expected.transient ? ", transient" : ""}`, () =>
      expect(createFailure("Pod mnist-coordinator", error)).toMatchObject({ what: "Pod mnist-coordinator", ...expected }));
});

describe("recordCreateOutcome: the CreateFailed condition and its Events", () => {
  const refused = createFailure("Pod mnist-coordinator", apiError(403, "Forbidden", podSecurity));
  const refusedMessage = `creating Pod mnist-coordinator: ${podSecurity}; the namespace's Pod Security level (label pod-security.kubernetes.io/enforce) refuses the pod: remove what a spec.*.template adds against it`;
  const job = (status: TrainingJobStatus = {}) => trainingJob("ns", "mnist").status(status).obj();
  const pass = (status: TrainingJobStatus, failures: CreateFailure[], seconds: number) =>
    recordCreateOutcome(job(status), { status: undefined }, failures, at(seconds));

  it("a refusal sets CreateFailed True with the API server's message and a Warning Event with the same, in the same pass", () => {
    const plan = { status: { phase: "Admitted" as const, conditions: [] } };
    const outcome = recordCreateOutcome(job(), plan, [refused], at(0));
    expect(outcome.status!.conditions).toEqual([
      {
        type: "CreateFailed",
        status: "True",
        reason: "PodSecurityViolation",
        message: refusedMessage,
        lastTransitionTime: stamp(0),
        observedGeneration: 1,
      },
    ]);
    expect(outcome.status!.phase).toBe("Admitted");
    expect(outcome.events).toEqual([{ type: "Warning", reason: "PodSecurityViolation", message: refusedMessage }]);
  });

  it("the same refusal again changes nothing and records no Event; a new one does, keeping the time it began", () => {
    const first = pass({}, [refused], 0).status!;
    expect(pass(first, [refused], 5)).toEqual({ status: undefined, events: [] });
    const quotaFailure = createFailure("Pod mnist-worker-1", apiError(403, "Forbidden", quota));
    const second = pass(first, [quotaFailure], 10);
    expect(second.status!.conditions![0]).toMatchObject({ status: "True", reason: "QuotaExceeded", lastTransitionTime: stamp(0) });
    expect(second.status!.conditions![0]!.message).toMatch(
      /^creating Pod mnist-worker-1: pods "mnist-worker-1" is forbidden: exceeded quota: compute/,
    );
    expect(second.events.map((event) => [event.type, event.reason])).toEqual([["Warning", "QuotaExceeded"]]);
  });

  it("the next pass that meets no failure sets it False (ObjectsCreated), a Normal Event", () => {
    const first = pass({}, [refused], 0).status!;
    const cleared = pass(first, [], 20);
    expect(cleared.status!.conditions).toEqual([
      {
        type: "CreateFailed",
        status: "False",
        reason: "ObjectsCreated",
        message: "every object the job needs now was created",
        lastTransitionTime: stamp(20),
        observedGeneration: 1,
      },
    ]);
    expect(cleared.events).toEqual([{ type: "Normal", reason: "ObjectsCreated", message: "every object the job needs now was created" }]);
    expect(pass(cleared.status!, [], 30)).toEqual({ status: undefined, events: [] });
  });

  it("a finished job keeps its last refusal (it may be why it failed); a job never refused gets no condition", () => {
    const first = pass({}, [refused], 0).status!;
    const failed = {
      ...first,
      conditions: [
        ...first.conditions!,
        { type: "Failed" as const, status: "True" as const, reason: "GangTimeout", lastTransitionTime: stamp(60) },
      ],
    };
    expect(pass(failed, [], 70)).toEqual({ status: undefined, events: [] });
    expect(pass({}, [], 0)).toEqual({ status: undefined, events: [] });
  });

  it("a long message is cut for the Event (1024 characters) and the condition (4096)", () => {
    const long = createFailure("Pod mnist-coordinator", apiError(403, "Forbidden", `${podSecurity}, ${"x".repeat(10_000)}`));
    const outcome = pass({}, [long], 0);
    expect(outcome.status!.conditions![0]!.message!.length).toBe(4096);
    expect(outcome.events[0]!.message.length).toBe(1024);
  });
});

describe("the gang deadline counts from the first attempt, when every create is refused", () => {
  it("the first pass writes WaitingForGang (and the refusal); the passes after keep its time; the job fails (GangTimeout) when it passes, saying why", () => {
    const gangJob = (status?: TrainingJobStatus) => {
      const job = trainingJob("ns", "mnist").gang(60);
      return status === undefined ? job : job.status(status);
    };
    // Every pass: reconcile, every pod refused, the outcome folded in, as apply-plan does.
    const refusal = createFailure(
      "Pod mnist-coordinator",
      apiError(403, "Forbidden", 'pods "mnist-coordinator" is forbidden: no PriorityClass with name high was found'),
    );
    const pass = (status: TrainingJobStatus | undefined, seconds: number) => {
      const seen = observed(gangJob(status)).at(seconds).obj();
      const plan = reconcile(seen, reconcileOptions());
      const outcome = recordCreateOutcome(seen.job, plan, plan.create.length > 0 ? [refusal] : [], at(seconds));
      return { plan, status: outcome.status ?? plan.status ?? seen.job.status! };
    };
    const admittedOf = (status: TrainingJobStatus) => status.conditions!.find((condition) => condition.type === "Admitted")!;

    const first = pass(undefined, 0);
    expect(admittedOf(first.status)).toMatchObject({ status: "False", reason: "WaitingForGang", lastTransitionTime: stamp(0) });
    expect(admittedOf(first.status).message).toContain(`the job fails at ${stamp(60)}`);
    expect(first.status.conditions!.find((condition) => condition.type === "CreateFailed")).toMatchObject({
      status: "True",
      reason: "Forbidden",
    });

    const later = pass(first.status, 30);
    expect(admittedOf(later.status)).toMatchObject({ reason: "WaitingForGang", lastTransitionTime: stamp(0) });
    expect(later.plan.requeueAfterMs).toBe(5000);

    const last = pass(later.status, 60);
    const failed = last.status.conditions!.find((condition) => condition.type === "Failed")!;
    expect(failed).toMatchObject({ status: "True", reason: "GangTimeout" });
    expect(failed.message).toMatch(
      /^0 of 4 pods of the minimum set are scheduled; not yet: mnist-coordinator \(not created yet\), .*; creating Pod mnist-coordinator: pods "mnist-coordinator" is forbidden: no PriorityClass with name high was found; scheduling\.gang\.timeoutSeconds \(60\) passed$/,
    );
    expect(last.plan.create).toEqual([]);
  });
});
