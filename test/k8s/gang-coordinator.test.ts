/**
 * A job's gang is exactly what its coordinator waits for. For each job of a matrix (placement
 * dedicated or colocated, sync or async mode, replicas with and without minWorkers and
 * maxWorkers, one to three shards), the gang's minimum set and PodGroup minMember
 * (@trainfleet/k8s) are set against the real Coordinator, in process, given the JobSpec the
 * operator hands it (coordinatorJobSpec): with the members of the set's pods registered its
 * first generation opens, and without any one of them it does not. A shard pod registers its
 * shard; a worker pod its worker, and with colocated placement the shard it serves too.
 * (Here in test/, since the operator's package may not import the coordinator's; that the
 * set's pods are the ones the operator makes is k8s/test/gang-size.test.ts.)
 */
import { Coordinator } from "@trainfleet/coordinator";
import type { TrainingJob } from "@trainfleet/k8s";
import { coordinatorJobSpec, gangPlan, minimumSet } from "@trainfleet/k8s";
import { MemberRole } from "@trainfleet/proto";
import { silentLogger } from "@trainfleet/runtime";
import { resolveJobSpec } from "@trainfleet/spec";
import { describe, expect, it } from "vitest";

type Registration = { role: MemberRole.WORKER } | { role: MemberRole.PARAMETER_SERVER; shardIndex: number };

/** What the process of a pod of the job registers with the coordinator. */
function registrationsOf(pod: string, job: TrainingJob): Registration[] {
  const shard = /-ps-(\d+)$/.exec(pod);
  if (shard !== null) return [{ role: MemberRole.PARAMETER_SERVER, shardIndex: Number(shard[1]) }];
  const worker = /-worker-(\d+)$/.exec(pod);
  if (worker === null) return [];
  const colocated = job.spec.parameterServers?.placement === "colocated";
  return colocated
    ? [{ role: MemberRole.WORKER }, { role: MemberRole.PARAMETER_SERVER, shardIndex: Number(worker[1]) }]
    : [{ role: MemberRole.WORKER }];
}

/** Whether the job's coordinator, with these members registered, opens its first generation. */
function opensWith(job: TrainingJob, members: readonly Registration[]): boolean {
  const spec = resolveJobSpec(coordinatorJobSpec(job, job.spec.workers!.replicas!));
  const coordinator = new Coordinator({ spec, leaseMs: 10_000, logger: silentLogger, now: () => 1_000_000 });
  members.forEach((member, i) => {
    if (member.role === MemberRole.WORKER) coordinator.register({ role: MemberRole.WORKER, host: `w${i}`, backend: "cpu" } as never);
    else coordinator.register({ role: MemberRole.PARAMETER_SERVER, address: `127.0.0.1:${i + 1}`, shardIndex: member.shardIndex } as never);
  });
  return coordinator.status().generation === 1;
}

interface Case {
  placement: "dedicated" | "colocated";
  mode: "sync" | "async";
  replicas: number;
  shards?: number;
  minWorkers?: number;
  maxWorkers?: number;
}

const cases: Case[] = [
  { placement: "dedicated", mode: "sync", replicas: 1 },
  { placement: "dedicated", mode: "sync", replicas: 3, shards: 1 },
  { placement: "dedicated", mode: "sync", replicas: 3, shards: 2, minWorkers: 2 },
  { placement: "dedicated", mode: "sync", replicas: 2, shards: 3, minWorkers: 1, maxWorkers: 4 },
  { placement: "dedicated", mode: "sync", replicas: 4, minWorkers: 4, maxWorkers: 4 },
  { placement: "dedicated", mode: "async", replicas: 3, shards: 2 },
  { placement: "dedicated", mode: "async", replicas: 3, shards: 1, minWorkers: 2, maxWorkers: 6 },
  { placement: "colocated", mode: "sync", replicas: 1 },
  { placement: "colocated", mode: "sync", replicas: 3 },
  { placement: "colocated", mode: "sync", replicas: 2, minWorkers: 2, maxWorkers: 2 },
];

function jobOf(c: Case): TrainingJob {
  const workers = { replicas: c.replicas, ...(c.minWorkers === undefined ? {} : { minWorkers: c.minWorkers }) };
  return {
    apiVersion: "trainfleet.dev/v1alpha1",
    kind: "TrainingJob",
    metadata: { name: "gang", namespace: "ml", uid: "uid-gang", generation: 1 },
    spec: {
      image: "trainfleet:test",
      workers: { ...workers, ...(c.maxWorkers === undefined ? {} : { maxWorkers: c.maxWorkers }) },
      parameterServers: c.placement === "colocated" ? { placement: "colocated" } : { placement: "dedicated", replicas: c.shards ?? 2 },
      training: { mode: c.mode },
      scheduling: { gang: { enabled: true }, schedulerName: "volcano" },
    },
  };
}

const title = (c: Case) =>
  `${c.placement} ${c.mode}, ${c.replicas} replicas` +
  `${c.shards === undefined ? "" : `, ${c.shards} shards`}` +
  `${c.minWorkers === undefined ? "" : `, minWorkers ${c.minWorkers}`}${c.maxWorkers === undefined ? "" : `, maxWorkers ${c.maxWorkers}`}`;

describe("the gang is what the coordinator waits for", () => {
  it.each(cases.map((c) => [title(c), c] as const))("%s", (_, c) => {
    const job = jobOf(c);
    const set = minimumSet(job);
    expect(gangPlan(job, ["volcano"]).podGroup!.spec["minMember"]).toBe(set.length);
    expect(set[0]).toBe("gang-coordinator");
    const members = set.flatMap((pod) => registrationsOf(pod, job));
    expect(opensWith(job, members), "with every member of the set").toBe(true);
    for (let missing = 0; missing < members.length; missing++)
      expect(opensWith(job, members.toSpliced(missing, 1)), `without ${JSON.stringify(members[missing])}`).toBe(false);
  });
});
