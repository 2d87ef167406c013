/**
 * What a kubelet writes to a pod's status, and how: Pending with CreateContainerConfigError when
 * the container cannot be made (or unscheduled, as the scheduler leaves a pod whose claim does
 * not exist), Running with its PodScheduled and Ready conditions once it is spawned, then
 * Succeeded or Failed with containerStatuses[].state.terminated.exitCode and its message
 * (termination-message.ts). Each is a merge patch of the pod's /status subresource with the
 * pod's uid as precondition, in order per pod, and none once the pod is deleted (or another
 * pod of its name replaced it).
 */

import { constants } from "node:os";
import type { CoreV1Api, V1Container } from "@kubernetes/client-node";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { podIP } from "./pod-network.js";
import type { PodExit, PodProcess } from "./pod-process.js";

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

/** A pod status as merge-patched (dates become RFC 3339 on the wire). */
export type PodStatusPatch = Record<string, unknown>;

/** A container that will never start: the pod stays Pending, as a kubelet leaves it. */
export function configErrorStatus(container: V1Container | undefined, message: string): PodStatusPatch {
  return {
    phase: "Pending",
    conditions: [{ type: "PodScheduled", status: "True", lastTransitionTime: new Date() }],
    containerStatuses: [
      {
        name: container?.name ?? "",
        image: container?.image ?? "",
        imageID: "",
        ready: false,
        restartCount: 0,
        state: { waiting: { reason: "CreateContainerConfigError", message } },
      },
    ],
  };
}

/** A pod the scheduler cannot place: Pending, PodScheduled False with the scheduler's reason and message. */
export function unschedulableStatus(message: string): PodStatusPatch {
  return {
    phase: "Pending",
    conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message, lastTransitionTime: new Date() }],
  };
}

/** A container that runs (and is Ready at once: no probes here). */
export function runningStatus(container: V1Container, startedAt: Date): PodStatusPatch {
  return {
    phase: "Running",
    podIP,
    podIPs: [{ ip: podIP }],
    hostIP: podIP,
    startTime: startedAt,
    conditions: conditions(true),
    containerStatuses: [
      {
        name: container.name,
        image: container.image ?? "",
        imageID: "",
        ready: true,
        started: true,
        restartCount: 0,
        state: { running: { startedAt } },
      },
    ],
  };
}

/** A container that ended: Succeeded on exit code 0, else Failed; with its termination message when it has one. */
export function terminatedStatus(
  container: V1Container,
  exit: PodExit,
  startedAt: Date,
  finishedAt: Date,
  message?: string,
): PodStatusPatch {
  const { exitCode, signal } = exit;
  return {
    phase: exitCode === 0 ? "Succeeded" : "Failed",
    conditions: conditions(false),
    containerStatuses: [
      {
        name: container.name,
        image: container.image ?? "",
        imageID: "",
        ready: false,
        started: false,
        restartCount: 0,
        state: {
          terminated: {
            exitCode,
            ...(signal === null ? {} : { signal: constants.signals[signal] }),
            reason: exitCode === 0 ? "Completed" : "Error",
            ...(message === undefined ? {} : { message }),
            startedAt,
            finishedAt,
          },
        },
      },
    ],
  };
}

/** A kubelet's pod conditions of a running (ready) or finished pod. */
function conditions(ready: boolean): { type: string; status: string; lastTransitionTime: Date }[] {
  const now = new Date();
  const status = ready ? "True" : "False";
  return [
    { type: "PodScheduled", status: "True", lastTransitionTime: now },
    { type: "Initialized", status: "True", lastTransitionTime: now },
    { type: "ContainersReady", status, lastTransitionTime: now },
    { type: "Ready", status, lastTransitionTime: now },
  ];
}

/** Writes pod statuses through the API; what fails (other than a pod that is gone) goes to `errors`. */
export class PodStatusWriter {
  constructor(
    private readonly core: CoreV1Api,
    private readonly namespace: string,
    private readonly closed: () => boolean,
    private readonly errors: string[],
  ) {}

  /** Merge-patches the pod's /status, on condition that the pod is still this one (its uid). */
  write(process: PodProcess, status: PodStatusPatch): void {
    process.writes = process.writes.then(async () => {
      if (process.deleted || this.closed()) return;
      try {
        await this.core.patchNamespacedPodStatus(
          { name: process.name, namespace: this.namespace, body: { metadata: { uid: process.uid }, status } },
          mergePatch,
        );
      } catch (error) {
        const code = (error as { code?: number }).code;
        // Gone (404), or another pod of the same name now (409): nothing to write to.
        if (code === 404 || code === 409 || this.closed()) return;
        this.errors.push(`${process.name}: status write failed: ${String(error)}`);
      }
    });
  }
}
