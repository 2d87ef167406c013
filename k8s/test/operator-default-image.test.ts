/**
 * The operator's default job image (--default-job-image, the chart's jobImage value) against the
 * in-process API server: a TrainingJob that leaves spec.image out runs it in every pod, one that
 * names an image runs its own, and the stored spec is never written. A job keeps the image its
 * pods run when the default changes under it (an operator restarted by a chart upgrade), and
 * takes the new one only once no pod is left (a suspend). Without a default such a job fails,
 * naming spec.image.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { namespace, OperatorHarness, operatorUser, podsOf } from "@trainfleet/testing/k8s/operator/operator-harness";
import { recordingLogger } from "@trainfleet/testing/k8s/operator/polling";
import { afterEach, describe, expect, it } from "vitest";
import { Operator } from "../src/operator.js";
import type { TrainingJobSpec } from "../src/training-job.js";

let harness: OperatorHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const pushed = "registry.example.com/team/trainfleet:0.1.0";
const upgraded = "registry.example.com/team/trainfleet:0.2.0";

/** The harness's operator replaced by one with `defaultJobImage` (the harness's own settings otherwise). */
async function restartOperatorWith(h: OperatorHarness, defaultJobImage: string): Promise<void> {
  await h.stopOperator();
  h.operator = await Operator.start({
    kubeConfig: h.server.kubeConfig(namespace, operatorUser),
    logger: recordingLogger(h.logLines),
    defaultJobImage,
    statusPollMs: 100,
    finishGraceMs: 300,
    resyncMs: 2000,
    informerBackoff: { initialMs: 50, maxMs: 400 },
    coordinatorUrl: (job) => h.coordinators.get(job.metadata.name)?.url ?? "http://127.0.0.1:1",
  });
}

/** The harness submits spec.image trainfleet:test unless the spec overrides it: undefined leaves it out of the request. */
const withoutImage = (spec: Partial<TrainingJobSpec>) => ({ ...spec, image: undefined }) as unknown as Partial<TrainingJobSpec>;

const imagesOf = (pods: V1Pod[]) =>
  Object.fromEntries(pods.map((pod) => [pod.metadata!.name!, pod.spec!.containers.find((c) => c.name === "trainfleet")!.image]));

describe("the operator's default job image", () => {
  it("runs it in every pod of a job that leaves spec.image out, and its own image in a job that names one", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    await restartOperatorWith(h, pushed);
    await h.submit("defaulted", withoutImage({ workers: { replicas: 2 }, parameterServers: { replicas: 1 } }));
    await h.submit("own", { image: "registry.example.com/vision/digits-trainer:1.0", workers: { replicas: 1 } });

    const defaulted = imagesOf(await h.waitForPods("defaulted", podsOf("defaulted", 1, 2)));
    expect(Object.values(defaulted)).toEqual([pushed, pushed, pushed, pushed]);
    const own = imagesOf(await h.waitForPods("own", podsOf("own", 2, 1)));
    expect(new Set(Object.values(own))).toEqual(new Set(["registry.example.com/vision/digits-trainer:1.0"]));
    // The default is the operator's, not the job's: the spec stays as it was written.
    expect((await h.job("defaulted")).spec.image).toBeUndefined();
  });

  it("keeps a job on the image its pods run when the default changes, and takes the new default after a suspend", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    await restartOperatorWith(h, pushed);
    const coordinator = await h.submit("steady", withoutImage({ workers: { replicas: 1 }, parameterServers: { replicas: 1 } }));
    await h.waitForPods("steady", podsOf("steady", 1, 1));
    await h.kubelet.runAll();
    coordinator.training(1, 3);
    await h.waitForCondition("steady", "Running", "True");

    // A chart upgrade restarts the operator with another default while the job runs.
    await restartOperatorWith(h, upgraded);
    await h.scale("steady", 2);
    const scaled = imagesOf(await h.waitForPods("steady", podsOf("steady", 1, 2)));
    expect(scaled["steady-worker-1"], "a worker added to a running job runs the job's image").toBe(pushed);
    expect(new Set(Object.values(scaled))).toEqual(new Set([pushed]));

    // Suspended, no pod is left: on resume every pod is made again, from the new default.
    await h.patchSpec("steady", { runPolicy: { suspend: true } });
    await h.waitForCondition("steady", "Suspended", "True", "Suspended");
    await h.waitForPods("steady", []);
    await h.patchSpec("steady", { runPolicy: { suspend: false } });
    const resumed = imagesOf(await h.waitForPods("steady", podsOf("steady", 1, 2)));
    expect(new Set(Object.values(resumed))).toEqual(new Set([upgraded]));
  });

  it("fails a job that leaves spec.image out when the operator has no default, naming spec.image", async () => {
    harness = await OperatorHarness.start();
    const h = harness;
    await h.submit("imageless", withoutImage({ workers: { replicas: 1 } }));
    const failed = await h.waitForCondition("imageless", "Failed", "True", "InvalidSpec");
    expect(failed.status!.conditions!.find((condition) => condition.type === "Failed")!.message).toContain("spec.image");
    expect(await h.pods("imageless")).toEqual([]);
  });
});
