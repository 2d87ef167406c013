/**
 * A coordinator that failed its job on purpose (a policy gave up: a non-finite loss, bad data,
 * the step deadline) is never restarted as if it had crashed, whenever the operator notices it:
 * while its status API still answers (its final status), and after its pod has ended, when only
 * the pod's status is left (its exit code, 20, and its termination message, the final word that
 * k8s/src/coordinator-exit.ts defines). Any other failure of the coordinator's pod is a crash and
 * restarts the job. reconcile() is pure: each test is one pass over what the operator sees.
 */
import { JobPhase } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import { finalWordIn, jobFailedExitCode, terminationMessage } from "../src/coordinator-exit.js";
import { reconcile } from "../src/reconcile.js";
import type { ReconcilePlan } from "../src/reconcile-plan.js";
import type { JobRef } from "./builders.js";
import { coordinatorStatus, observed, pod, reconcileOptions, stamp, trainingJob, unreachableCoordinator } from "./builders.js";

const mnist: JobRef = { namespace: "ns", name: "mnist" };
const job = () => trainingJob("ns", "mnist").running();
/** What the CLI's coordinator writes to /dev/termination-log when its job failed by a policy (spelled out, not built by src/). */
const nonFiniteLoss =
  '{"kind":"trainfleet.dev/job-end","phase":"Failed","reason":"NonFiniteLoss","message":"the loss was NaN at step 70: lower training.learningRate"}';
/** The shard and both workers, running: the coordinator told them to stop, and they get the grace to do so. */
const members = () => [pod(mnist, "parameter-server", 0), pod(mnist, "worker", 0), pod(mnist, "worker", 1)];

const conditionsOf = (plan: ReconcilePlan) =>
  Object.fromEntries((plan.status?.conditions ?? []).map((condition) => [condition.type, [condition.status, condition.reason]]));
const conditionOf = (plan: ReconcilePlan, type: string) => plan.status?.conditions?.find((condition) => condition.type === type);

/** The job failed with `reason` and `message`, without a restart: no Restarting, restarts unchanged, no pod made again. */
function expectFailedWithoutRestart(plan: ReconcilePlan, reason: string, message: string): void {
  expect(conditionsOf(plan)).toEqual({
    Created: ["True", "TrainingJobCreated"],
    Admitted: ["True", "Admitted"],
    Running: ["False", "JobFailed"],
    Failed: ["True", reason],
  });
  expect(conditionOf(plan, "Failed")!.message).toBe(message);
  expect(plan.status).toMatchObject({ phase: "Failed", completionTime: stamp(5) });
  expect(plan.status).not.toHaveProperty("restarts");
  expect(plan.create).toEqual([]);
  expect(plan.events.map((event) => [event.type, event.reason])).toEqual([
    ["Normal", "JobFailed"],
    ["Warning", reason],
  ]);
}

describe("a coordinator that failed its job on purpose", () => {
  it("while its status API answers: the job fails with its reason and message, and nothing is restarted", () => {
    const plan = reconcile(
      observed(job())
        .service()
        .pods(pod(mnist, "coordinator"), ...members())
        .coordinator(coordinatorStatus(JobPhase.FAILED).because("NonFiniteLoss", "the loss was NaN at step 70"))
        .at(5)
        .obj(),
      reconcileOptions(),
    );
    expectFailedWithoutRestart(plan, "NonFiniteLoss", "the loss was NaN at step 70");
    // Its own pod only served the final status by then: it goes; the members get their grace.
    expect(plan.deletePods.map((target) => target.name)).toEqual(["mnist-coordinator"]);
  });

  it("after its pod ended (exit 20) with its final word: the job fails with the coordinator's reason and message; the pod stays for its logs", () => {
    const plan = reconcile(
      observed(job())
        .service()
        .pods(pod(mnist, "coordinator").exitCode(20, nonFiniteLoss), ...members())
        .at(5)
        .obj(),
      reconcileOptions(),
    );
    expectFailedWithoutRestart(plan, "NonFiniteLoss", "the loss was NaN at step 70: lower training.learningRate");
    // cleanPodPolicy Running: a finished pod stays; the members have 30 s to exit as the coordinator told them.
    expect(plan.deletePods).toEqual([]);
    expect(plan.requeueAfterMs).toBe(30_000);
  });

  it("after its pod ended (exit 20) while the operator still asked it: an unreachable status API changes nothing", () => {
    const plan = reconcile(
      observed(job())
        .service()
        .pods(pod(mnist, "coordinator").exitCode(20, nonFiniteLoss), ...members())
        .coordinator(unreachableCoordinator("GET http://mnist-coordinator.ns.svc:7080/v1/jobs/mnist: connect ECONNREFUSED"))
        .at(5)
        .obj(),
      reconcileOptions(),
    );
    expectFailedWithoutRestart(plan, "NonFiniteLoss", "the loss was NaN at step 70: lower training.learningRate");
  });

  it("after its pod ended (exit 20) with no final word (its log's last line instead): the job fails as CoordinatorFailed, quoting it", () => {
    const plan = reconcile(
      observed(job())
        .service()
        .pods(pod(mnist, "coordinator").exitCode(20, '{"level":50,"msg":"the step deadline policy gave up"}\n'), ...members())
        .at(5)
        .obj(),
      reconcileOptions(),
    );
    expectFailedWithoutRestart(
      plan,
      "CoordinatorFailed",
      'mnist-coordinator exited 20 (Error): {"level":50,"msg":"the step deadline policy gave up"}: the coordinator failed the job (exit code 20) and left no reason',
    );
  });

  it("a coordinator pod that exited 0 with its final word succeeded the job with the coordinator's reason and message", () => {
    const word =
      '{"kind":"trainfleet.dev/job-end","phase":"Succeeded","reason":"Completed","message":"trained 300 steps; test accuracy 86.00%"}';
    const plan = reconcile(
      observed(job())
        .service()
        .pods(pod(mnist, "coordinator").exitCode(0, word), ...members())
        .at(5)
        .obj(),
      reconcileOptions(),
    );
    expect(conditionOf(plan, "Succeeded")).toMatchObject({
      status: "True",
      reason: "Completed",
      message: "trained 300 steps; test accuracy 86.00%",
    });
    expect(plan.status).not.toHaveProperty("restarts");
  });
});

describe("a coordinator that crashed is restarted, whatever its last words", () => {
  for (const [how, exitCode, message] of [
    ["an error (exit 1)", 1, "trainfleet: checkpoint-300.json: sha256 mismatch (DATA_LOSS)\n"],
    ["the OOM killer (exit 137)", 137, undefined],
    ["exit 1 with a final word in its log: only the exit code says the job failed on purpose", 1, nonFiniteLoss],
  ] as const)
    it(`${how}: the job restarts from its newest checkpoint (Restarting CoordinatorFailed, restarts 1)`, () => {
      const plan = reconcile(
        observed(job())
          .service()
          .pods(pod(mnist, "coordinator").exitCode(exitCode, message), ...members())
          .at(5)
          .obj(),
        reconcileOptions(),
      );
      expect(conditionsOf(plan)).toMatchObject({ Restarting: ["True", "CoordinatorFailed"] });
      expect(conditionOf(plan, "Failed")).toBeUndefined();
      expect(plan.status).toMatchObject({ restarts: 1 });
      expect(plan.deletePods.map((target) => target.name)).toEqual(["mnist-coordinator"]);
    });
});

describe("the coordinator's final word (coordinator-exit.ts)", () => {
  it("is one JSON object that the operator reads back; the exit code of a failed job is 20", () => {
    expect(jobFailedExitCode).toBe(20);
    const text = terminationMessage({
      phase: "Failed",
      reason: "NonFiniteLoss",
      message: "the loss was NaN at step 70: lower training.learningRate",
    });
    expect(text).toBe(nonFiniteLoss);
    expect(finalWordIn(text)).toEqual({
      phase: "Failed",
      reason: "NonFiniteLoss",
      message: "the loss was NaN at step 70: lower training.learningRate",
    });
  });

  it("fits the 4096 bytes the kubelet keeps of a termination message, however long the message (in UTF-8 bytes)", () => {
    const text = terminationMessage({ phase: "Failed", reason: "WorkerFailed", message: `worker failed: ${"données é ".repeat(1000)}` });
    expect(Buffer.byteLength(text, "utf8")).toBeLessThanOrEqual(4096);
    expect(Buffer.byteLength(text, "utf8")).toBeGreaterThan(4000);
    expect(finalWordIn(text)).toMatchObject({ phase: "Failed", reason: "WorkerFailed" });
    expect(finalWordIn(text)!.message.endsWith("…")).toBe(true);
  });

  it("is not found in a log line, a JSON object of another kind, or nothing", () => {
    expect(finalWordIn(undefined)).toBeUndefined();
    expect(finalWordIn("trainfleet: out of memory\n")).toBeUndefined();
    expect(finalWordIn('{"phase":"Failed","reason":"NonFiniteLoss","message":"x"}')).toBeUndefined();
    expect(finalWordIn('{"kind":"trainfleet.dev/job-end","phase":"Running","reason":"Training"}')).toBeUndefined();
  });
});
