/**
 * The JSON form of the status API: canonical proto JSON of the same messages the gRPC
 * API sends (lowerCamelCase names, enums by name, 64-bit integers as strings), with
 * zero values written out so that a reader sees every field. The coordinator's HTTP
 * server writes it and `trainfleet status` reads it, through these two functions only.
 */

import type { JsonValue } from "@bufbuild/protobuf";
import { fromJson, toJson } from "@bufbuild/protobuf";
import type { JobStatus, JobWorkers } from "../gen/trainfleet/v1/job_pb.js";
import { JobStatusSchema, JobWorkersSchema } from "../gen/trainfleet/v1/job_pb.js";

const writeOptions = { alwaysEmitImplicit: true } as const;

export function jobStatusToJson(status: JobStatus): JsonValue {
  return toJson(JobStatusSchema, status, writeOptions);
}

/** Reads a JobStatus; fields it does not know (from a newer coordinator) are ignored. */
export function jobStatusFromJson(json: JsonValue): JobStatus {
  return fromJson(JobStatusSchema, json, { ignoreUnknownFields: true });
}

export function jobWorkersToJson(workers: JobWorkers): JsonValue {
  return toJson(JobWorkersSchema, workers, writeOptions);
}

export function jobWorkersFromJson(json: JsonValue): JobWorkers {
  return fromJson(JobWorkersSchema, json, { ignoreUnknownFields: true });
}
