/**
 * How a member appears in the job status: a worker's WorkerStatus with its smoothed step
 * timings, a shard's ParameterServerStatus with the counters of its latest heartbeat.
 * Pure functions over a Member; the coordinator calls them.
 */
import { equals } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ParameterServerStatsSchema } from "@trainfleet/proto";
import type { ParameterServerStats, ParameterServerStatusSchema, WorkerStatusSchema } from "@trainfleet/proto";
import type { Member } from "./members.js";

/** A worker's recent step timings, in milliseconds. */
export interface StepTiming {
  stepMs: number;
  computeMs: number;
  communicateMs: number;
  /** Progress reports folded in so far. */
  reports: number;
}

/** Weight of the newest report in the exponentially weighted means of StepTiming. */
export const timingWeight = 0.2;

/** Folds one progress report into the worker's timings (the first report is taken as is). */
export function recordTiming(timing: StepTiming, computeMs: number, communicateMs: number): void {
  const w = timing.reports === 0 ? 1 : timingWeight;
  timing.computeMs += w * (computeMs - timing.computeMs);
  timing.communicateMs += w * (communicateMs - timing.communicateMs);
  timing.stepMs = timing.computeMs + timing.communicateMs;
  timing.reports++;
}

/** Keeps a shard's latest counters; true when they differ from what was held. */
export function recordShardStats(member: Member, stats: ParameterServerStats): boolean {
  if (member.shardStats !== undefined && equals(ParameterServerStatsSchema, member.shardStats, stats)) return false;
  member.shardStats = stats;
  return true;
}

export function workerStatus(member: Member): MessageInitShape<typeof WorkerStatusSchema> {
  return {
    workerId: member.id,
    rank: Math.max(member.rank, 0),
    host: member.host,
    state: member.state,
    lastHeartbeatUnixMs: BigInt(member.lastHeartbeat),
    backend: member.backend,
    lastStep: member.lastStep,
    stepTimeMs: member.timing.stepMs,
    computeMs: member.timing.computeMs,
    communicateMs: member.timing.communicateMs,
    lastErrorReason: member.lastError?.reason ?? "",
    lastErrorMessage: member.lastError?.message ?? "",
  };
}

export function parameterServerStatus(member: Member): MessageInitShape<typeof ParameterServerStatusSchema> {
  return {
    index: member.shardIndex,
    memberId: member.id,
    host: member.host,
    address: member.address,
    state: member.state,
    lastHeartbeatUnixMs: BigInt(member.lastHeartbeat),
    // Unset until the shard's first heartbeat.
    ...(member.shardStats === undefined ? {} : { stats: member.shardStats }),
  };
}
