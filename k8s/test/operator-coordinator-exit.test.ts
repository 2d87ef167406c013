/**
 * A coordinator that failed its job on purpose and exited before the operator read its final
 * status, against the in-process test API server with the real client-node: only its pod's status
 * is left (exit code 20 and its termination message, as the kubelet reports them). The operator
 * fails the job with the coordinator's reason and does not start the coordinator again, which
 * would run the job afresh.
 */
import { namespace, OperatorHarness, operatorUser, podsOf } from "@trainfleet/testing/k8s/operator/operator-harness";
import { afterEach, describe, expect, it } from "vitest";
import type { TrainingJob } from "../src/training-job.js";

let harness: OperatorHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const condition = (job: TrainingJob, type: string) => job.status?.conditions?.find((candidate) => candidate.type === type);
/** What the CLI's coordinator writes to /dev/termination-log when a policy failed its job (spelled out, not built by src/). */
const finalWord =
  '{"kind":"trainfleet.dev/job-end","phase":"Failed","reason":"NonFiniteLoss","message":"the loss was NaN at step 8: lower training.learningRate"}';

describe("a coordinator that failed its job on purpose (in-process test API server)", () => {
  it("exited 20 with its final word before its status was read: the job fails with its reason, and no pod is made again", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    const coordinator = await h.submit("nan", { workers: { replicas: 1 }, parameterServers: { replicas: 1 } });
    const first = await h.waitForPods("nan", podsOf("nan", 1, 1));
    await h.kubelet.runAll();
    coordinator.training(1, 7);
    await h.waitForCondition("nan", "Running", "True", "Training");

    // Its status API is gone with it; the scripted one still says Training, but a pod that is not running is not asked.
    await h.kubelet.exit("nan-coordinator", 20, finalWord);
    const failed = await h.waitForCondition("nan", "Failed", "True", "NonFiniteLoss");
    expect(condition(failed, "Failed")!.message).toBe("the loss was NaN at step 8: lower training.learningRate");
    expect(condition(failed, "Restarting")).toBeUndefined();
    expect(failed.status!.restarts).toBeUndefined();
    expect((await h.eventsWith("nan", ["NonFiniteLoss"])).find((event) => event.reason === "NonFiniteLoss")!.type).toBe("Warning");

    // The shard and the worker go after their grace (cleanPodPolicy Running); the coordinator's pod stays, the same one, for its logs.
    const [left] = await h.waitForPods("nan", ["nan-coordinator"]);
    expect(left!.metadata!.uid).toBe(first.find((pod) => pod.metadata!.name === "nan-coordinator")!.metadata!.uid);
    const reconciles = h.operator!.reconciles;
    await h.waitFor("another reconcile", async () => h.operator!.reconciles > reconciles);
    expect(h.server.requests.entries({ user: operatorUser, verb: "create", resource: "pods", status: 201 })).toHaveLength(3);
    expect(await h.core.readNamespacedPod({ name: "nan-coordinator", namespace })).toMatchObject({ status: { phase: "Failed" } });
  });
});
