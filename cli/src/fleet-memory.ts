/** `trainfleet run`'s check, before anything is allocated, that the whole fleet fits this machine. */
import { shardMemoryBytes } from "@trainfleet/paramserver";
import { Code, TrainfleetError } from "@trainfleet/proto";
import type { ResolvedJobSpec } from "@trainfleet/spec";
import { dataShape, parameterLayout } from "@trainfleet/spec";

/**
 * Refuses a job whose processes would need more memory than this machine has in all
 * (os.totalmem): the shards' buffers as a shard counts them (paramserver shard-assignment.ts
 * shardMemoryBytes: parameters twice, each optimizer state array twice, a contribution per
 * rank, the initial values), and each worker's parameters, gradient, pulled copy and model.
 */
export function checkFleetMemory(spec: ResolvedJobSpec, machineBytes: number): void {
  const parameters = parameterLayout(spec.model!, dataShape(spec.dataset!)).parameterCount;
  const ranks = spec.workers!.maxWorkers;
  // The shards' ranges together are the whole parameter vector.
  const shards = shardMemoryBytes({ range: { begin: 0, end: parameters }, optimizer: spec.training!.optimizer!, worldSize: ranks });
  const workers = 4 * parameters * 4 * ranks;
  if (shards + workers <= machineBytes) return;
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
  throw new TrainfleetError(
    Code.RESOURCE_EXHAUSTED,
    `the job needs about ${gib(shards + workers)} (${parameters} parameters: ${gib(shards)} on the shards, ${gib(workers)} for ${ranks} workers) but this machine has ${gib(machineBytes)} of memory in all (os.totalmem); use a smaller model or fewer workers, or run the job on Kubernetes`,
  );
}
