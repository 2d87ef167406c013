/**
 * What a kubelet and a scheduler would write into pod status, for operator tests against the
 * in-process API server (no node runs pods here): each call patches one pod's /status through
 * the API, as they do, so the operator sees it through its pod informer.
 */

import type { KubeConfig, V1PodCondition } from "@kubernetes/client-node";
import { CoreV1Api, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export class FakeKubelet {
  readonly #core: CoreV1Api;

  constructor(
    config: KubeConfig,
    private readonly namespace: string,
  ) {
    this.#core = config.makeApiClient(CoreV1Api);
  }

  async #patch(
    name: string,
    status: { phase: string; conditions?: V1PodCondition[]; podIP?: string; containerStatuses?: unknown[] },
  ): Promise<void> {
    await this.#core.patchNamespacedPodStatus({ name, namespace: this.namespace, body: { status } }, mergePatch);
  }

  /** The scheduler bound the pod; it is not running yet. */
  schedule(name: string): Promise<void> {
    return this.#patch(name, { phase: "Pending", conditions: [{ type: "PodScheduled", status: "True" }] });
  }

  /** The scheduler found no node, and says why. */
  unschedulable(name: string, message: string): Promise<void> {
    return this.#patch(name, {
      phase: "Pending",
      conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message }],
    });
  }

  run(name: string): Promise<void> {
    return this.#patch(name, {
      phase: "Running",
      podIP: "10.0.0.1",
      conditions: [
        { type: "PodScheduled", status: "True" },
        { type: "Ready", status: "True" },
      ],
    });
  }

  /** The container exited with `exitCode`: the pod Succeeded (0) or Failed (restartPolicy Never); `message` is its termination message. */
  exit(name: string, exitCode: number, message?: string): Promise<void> {
    return this.#patch(name, {
      phase: exitCode === 0 ? "Succeeded" : "Failed",
      conditions: [
        { type: "PodScheduled", status: "True" },
        { type: "Ready", status: "False" },
      ],
      containerStatuses: [
        {
          name: "trainfleet",
          ready: false,
          restartCount: 0,
          image: "trainfleet:test",
          imageID: "",
          state: {
            terminated: { exitCode, reason: exitCode === 0 ? "Completed" : "Error", ...(message === undefined ? {} : { message }) },
          },
        },
      ],
    });
  }

  /** Runs every pod of the namespace that is not running or done yet; returns their names. */
  async runAll(): Promise<string[]> {
    const pods = await this.#core.listNamespacedPod({ namespace: this.namespace });
    const started: string[] = [];
    for (const pod of pods.items) {
      const phase = pod.status?.phase;
      if (pod.metadata?.deletionTimestamp !== undefined || phase === "Running" || phase === "Succeeded" || phase === "Failed") continue;
      await this.run(pod.metadata!.name!);
      started.push(pod.metadata!.name!);
    }
    return started;
  }
}
