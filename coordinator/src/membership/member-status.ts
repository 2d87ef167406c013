/**
 * How a member appears in the job status: a worker's WorkerStatus with its smoothed step
 * timings (step-timing.ts), a shard's ParameterServerStatus with the counters of its latest
 * heartbeat. Pure functions over a Member; the coordinator calls them.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import { equals } from "@bufbuild/protobuf";
import type { ParameterServerStats, ParameterServerStatusSchema, WorkerStatusSchema } from "@trainfleet/proto";
import { ParameterServerStatsSchema } from "@trainfleet/proto";
import type { Member } from "./members.js";

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
    bytesRead: BigInt(member.bytesRead),
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
