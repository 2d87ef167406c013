/**
 * How many members must register before a job's training starts, that is before its
 * coordinator opens the first generation: every parameter-server shard and workers.replicas
 * workers, whatever the training mode and workers.maxWorkers (more workers wait as standbys).
 * A coordinator that took over a running job from one that died starts with
 * workers.minWorkers instead once a lease has passed since its first worker came back, since
 * some may never come back. With colocated placement each worker process serves one shard,
 * so the shards come with the workers and have no process of their own.
 *
 * The coordinator's start gate (coordinator/src/job/start-gate.ts) and the Kubernetes
 * operator's gang (k8s/src/gang.ts) both ask this, so a gang holds exactly the pods that
 * training waits for: never fewer (a partial gang would hold its nodes and wait), never more.
 */
import type { JobSpec } from "@trainfleet/proto";
import { Placement } from "@trainfleet/proto";
import type { ResolvedJobSpec } from "./resolve-job-spec.js";

type WorkersSpec = NonNullable<JobSpec["workers"]>;

export interface MembersToStart {
  /** Parameter-server shards that must register: one per index. */
  shards: number;
  /** Workers that must register. */
  workers: number;
  /** Processes that serve shards and nothing else: none with colocated placement, where each worker serves one. */
  shardProcesses: number;
}

/** Workers needed to start: replicas; for a coordinator that took over a running job, once a lease has passed, minWorkers. */
export function workersToStartWith(workers: Pick<WorkersSpec, "replicas" | "minWorkers">, takenOverAfterLease: boolean): number {
  return takenOverAfterLease ? workers.minWorkers : workers.replicas;
}

/** What the job waits for before it trains (`takenOverAfterLease`: see workersToStartWith). */
export function membersToStart(spec: ResolvedJobSpec, takenOverAfterLease = false): MembersToStart {
  const { shards, placement } = spec.parameterServers!;
  return {
    shards,
    workers: workersToStartWith(spec.workers!, takenOverAfterLease),
    shardProcesses: placement === Placement.COLOCATED ? 0 : shards,
  };
}
