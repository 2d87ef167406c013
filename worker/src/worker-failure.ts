/**
 * Why a worker gives up for good, and telling the coordinator so before it exits
 * (CoordinatorService.ReportFailure), so that the job's status says why instead of a lease
 * running out or a pause timing out.
 *
 * The reason travels with the error as a WorkerFailure: a TrainfleetError with the code,
 * field and message of the error it wraps (the original is its cause), plus a CamelCase
 * reason given where the failure is recognised (loading the data set, building the model,
 * a gradient the worker finds non-finite). Anything else is a WorkerError.
 */

import type { ClientOf, TransportSecurity } from "@trainfleet/proto";
import { Code, CoordinatorService, createClient, TrainfleetError } from "@trainfleet/proto";
import type { Logger } from "@trainfleet/runtime";

export type FailureReason = "BackendUnavailable" | "DataUnavailable" | "ModelError" | "NonFiniteGradient" | "WorkerError";

/** How long the report may take: the worker is on its way out, and the coordinator may be gone. */
export const failureReportTimeoutMs = 2_000;

export class WorkerFailure extends TrainfleetError {
  readonly reason: FailureReason;

  constructor(reason: FailureReason, error: TrainfleetError) {
    super(error.code, error.message, { ...(error.field === undefined ? {} : { field: error.field }), cause: error });
    this.reason = reason;
  }
}

/** `error` as a WorkerFailure with `reason`; one that already is keeps its own reason. */
export function workerFailure(reason: FailureReason, error: unknown): WorkerFailure {
  return error instanceof WorkerFailure ? error : new WorkerFailure(reason, TrainfleetError.from(error));
}

export function failureReason(error: unknown): FailureReason {
  return error instanceof WorkerFailure ? error.reason : "WorkerError";
}

export interface FailureReport {
  /** A registered worker's session client; none before registering (a client to `coordinator` is made for the call). */
  client?: ClientOf<typeof CoordinatorService> | undefined;
  coordinator: string;
  /** The worker's credentials, for the client made for the call: mutual TLS with the coordinator. */
  security?: TransportSecurity | undefined;
  workerId?: string | undefined;
  host: string;
  generation?: number | undefined;
  error: unknown;
  logger: Logger;
}

/**
 * Tells the coordinator why this worker is exiting, at most failureReportTimeoutMs; never
 * throws (the worker exits with its error either way). A coordinator that does not know
 * the worker id (it restarted meanwhile) is told again by host.
 */
export async function reportFailure(report: FailureReport): Promise<void> {
  const client =
    report.client ??
    createClient(
      CoordinatorService,
      report.coordinator,
      report.security === undefined ? undefined : { security: report.security, server: { roles: ["coordinator"] } },
    );
  const failure = TrainfleetError.from(report.error);
  const request = {
    workerId: report.workerId ?? "",
    host: report.host,
    generation: report.generation ?? 0,
    reason: failureReason(report.error),
    message: failure.message,
  };
  const signal = AbortSignal.timeout(failureReportTimeoutMs);
  try {
    try {
      await client.reportFailure(request, { signal, timeoutMs: failureReportTimeoutMs });
    } catch (error) {
      if (request.workerId === "" || TrainfleetError.from(error).code !== Code.NOT_FOUND) throw error;
      await client.reportFailure({ ...request, workerId: "" }, { signal, timeoutMs: failureReportTimeoutMs });
    }
    report.logger.info({ reason: request.reason }, "reported the failure to the coordinator");
  } catch (error) {
    report.logger.warn(
      { reason: request.reason, err: TrainfleetError.from(error).message },
      "could not report the failure to the coordinator",
    );
  } finally {
    if (report.client === undefined) client.close();
  }
}
