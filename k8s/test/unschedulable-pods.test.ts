/**
 * Pods the scheduler cannot place (a missing claim, a quota, no node with room) are created and
 * stay Pending, so nothing but the TrainingJob's status would say why: the Running condition
 * names them with the scheduler's words, whichever member they are.
 */
import { JobPhase } from "@trainfleet/proto";
import { describe, expect, it } from "vitest";
import { reconcile } from "../src/reconcile.js";
import type { JobRef } from "./builders.js";
import { coordinatorStatus, observed, pod, reconcileOptions, runningPods, trainingJob } from "./builders.js";

const mnist: JobRef = { namespace: "ns", name: "mnist" };
const noRoom = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.";
const noClaim = '0/3 nodes are available: persistentvolumeclaim "data" not found.';

function running(given: ReturnType<typeof observed>) {
  const condition = reconcile(given.obj(), reconcileOptions()).status?.conditions?.find((candidate) => candidate.type === "Running");
  expect(condition).toBeDefined();
  return condition!;
}

describe("reconcile: pods the scheduler cannot place", () => {
  it("makes Running False MembersUnschedulable while the coordinator waits for them, naming each pod and the scheduler's words, then the coordinator's", () => {
    const [coordinator, , worker0] = runningPods(mnist, 1, 2);
    const given = observed(trainingJob("ns", "mnist").running())
      .service()
      .pods(coordinator!, pod(mnist, "parameter-server", 0).unschedulable(noClaim), worker0!, pod(mnist, "worker", 1).unschedulable(noRoom))
      .coordinator(
        coordinatorStatus(JobPhase.PENDING).because("WaitingForMembers", "waiting for members: 0/1 shards, 1/2 workers registered"),
      );
    const condition = running(given);
    expect([condition.status, condition.reason]).toEqual(["False", "MembersUnschedulable"]);
    expect(condition.message).toBe(
      `pod mnist-ps-0 cannot be scheduled: Unschedulable: ${noClaim}; pod mnist-worker-1 cannot be scheduled: Unschedulable: ${noRoom}; the coordinator is waiting for members: 0/1 shards, 1/2 workers registered`,
    );
  });

  it("names at most three pods, in rank order, and counts the rest", () => {
    const stuck = Array.from({ length: 12 }, (_, rank) => pod(mnist, "worker", rank).unschedulable(noRoom));
    const given = observed(trainingJob("ns", "mnist").replicas(12).running())
      .service()
      .pods(...runningPods(mnist, 1, 0), ...stuck)
      .coordinator(coordinatorStatus(JobPhase.PENDING));
    const message = running(given).message!;
    expect(message.match(/cannot be scheduled/g)).toHaveLength(3);
    expect(message).toContain("pod mnist-worker-0 ");
    expect(message).toContain("pod mnist-worker-2 ");
    expect(message).not.toContain("pod mnist-worker-10 ");
    expect(message).toContain("and 9 more pods");
  });

  it("keeps a training job Running and says why a worker added by a scale-up has not joined", () => {
    const given = observed(trainingJob("ns", "mnist").replicas(3).running())
      .service()
      .pods(...runningPods(mnist, 1, 2), pod(mnist, "worker", 2).unschedulable(noRoom))
      .coordinator(coordinatorStatus(JobPhase.RUNNING).training(2));
    const condition = running(given);
    expect([condition.status, condition.reason]).toEqual(["True", "Training"]);
    expect(condition.message).toBe(`epoch 1 of 3, step 70 of 300; pod mnist-worker-2 cannot be scheduled: Unschedulable: ${noRoom}`);
  });

  it("leaves the coordinator's own words when every pod is placed", () => {
    const given = observed(trainingJob("ns", "mnist").running())
      .service()
      .pods(...runningPods(mnist, 1, 2))
      .coordinator(
        coordinatorStatus(JobPhase.PENDING).because("WaitingForMembers", "waiting for members: 1/1 shards, 1/2 workers registered"),
      );
    const condition = running(given);
    expect([condition.reason, condition.message]).toEqual(["WaitingForMembers", "waiting for members: 1/1 shards, 1/2 workers registered"]);
  });
});
