/**
 * The gang's minimum set (gang.ts): pods the operator makes for the job, sized from the
 * replicas the job started with through spec's membersToStart, and every pod when an edit
 * left a spec the coordinator would refuse. That the set is exactly what the real
 * coordinator waits for is test/k8s/gang-coordinator.test.ts.
 */
import { membersToStart, resolveJobSpec } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";
import { minimumSet } from "../src/gang.js";
import { coordinatorJobSpec } from "../src/job-spec.js";
import { reconcile } from "../src/reconcile.js";
import { observed, reconcileOptions, trainingJob } from "./builders.js";

function jobOf(replicas: number, shards: number, minWorkers?: number) {
  return trainingJob("ml", "gang")
    .spec({
      workers: { replicas, ...(minWorkers === undefined ? {} : { minWorkers }) },
      parameterServers: { placement: "dedicated", replicas: shards },
      scheduling: { gang: { enabled: true }, schedulerName: "volcano" },
    })
    .obj();
}

describe("the gang's minimum set", () => {
  it.each([
    [1, 1],
    [3, 2],
  ])("is made of pods the operator makes (%i workers, %i shards)", (replicas, shards) => {
    const job = jobOf(replicas, shards);
    const created = reconcile(observed(trainingJob("ml", "gang").spec(job.spec)).obj(), reconcileOptions()).create;
    const names = created.filter((object) => object.kind === "Pod").map((pod) => pod.metadata!.name!);
    expect(names).toEqual(expect.arrayContaining(minimumSet(job)));
    expect(minimumSet(job)).toHaveLength(1 + shards + replicas);
  });

  it("sizes the gang from the replicas the job started with, and a coordinator that takes over needs no more", () => {
    const job = jobOf(4, 1, 2);
    job.status = { trainingReplicas: 3 };
    expect(minimumSet(job)).toEqual(["gang-coordinator", "gang-ps-0", "gang-worker-0", "gang-worker-1", "gang-worker-2"]);
    const spec = resolveJobSpec(coordinatorJobSpec(job, 3));
    expect(membersToStart(spec, true)).toEqual({ shards: 1, workers: 2, shardProcesses: 1 });
  });

  it("counts every pod the job started with when an edit left a spec its coordinator would refuse, rather than fail the reconcile", () => {
    // minWorkers 3 over the 2 workers the job started with: no JobSpec to ask.
    const job = jobOf(3, 1, 3);
    job.status = { trainingReplicas: 2 };
    expect(() => resolveJobSpec(coordinatorJobSpec(job, 2))).toThrow(/workers\.minWorkers/);
    expect(minimumSet(job)).toEqual(["gang-coordinator", "gang-ps-0", "gang-worker-0", "gang-worker-1"]);
  });
});
