/**
 * What the job's coordinator reports: its JobStatus from the status API (GET /v1/jobs/{id}, the
 * proto JSON that gRPC GetJob also sends). The operator reads it on each reconcile of a running
 * job, with the job's read token; a coordinator that does not answer is reported as such, never guessed at.
 */

import type { JsonValue } from "@bufbuild/protobuf";
import { fromJson } from "@bufbuild/protobuf";
import type { JobStatus } from "@trainfleet/proto";
import { JobStatusSchema } from "@trainfleet/proto";

export type CoordinatorReport = { status: JobStatus } | { unreachable: string };

/** `token`: the job's read token, sent as `Authorization: Bearer` (never logged: a refusal names the HTTP status only). */
export async function fetchCoordinatorStatus(
  baseUrl: string,
  jobId: string,
  timeoutMs: number,
  token: string | undefined,
): Promise<CoordinatorReport> {
  const url = `${baseUrl}/v1/jobs/${encodeURIComponent(jobId)}`;
  try {
    const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) return { unreachable: `GET ${url}: HTTP ${response.status}` };
    const json = (await response.json()) as JsonValue;
    return { status: fromJson(JobStatusSchema, json, { ignoreUnknownFields: true }) };
  } catch (error) {
    return { unreachable: `GET ${url}: ${error instanceof Error ? error.message : String(error)}` };
  }
}
