/**
 * Fatal failures that workers report before they exit (CoordinatorService.ReportFailure),
 * and the rule that turns them into a failed job instead of a silent crash loop.
 *
 * The rule: the job fails with reason WorkerFailed once workers.replicas fatal reports have
 * come with no step completed in between (counted since the last completed step, or since
 * the coordinator started). So one flaky worker among many that train does not fail the
 * job (the others complete steps, which reset the count), but every worker failing, or a
 * replacement that fails each time while the job cannot go on, does, within seconds rather
 * than after workers.pauseTimeoutSeconds. Reports from workers that never registered (their
 * data set could not be loaded) count the same, by host.
 *
 * Pure: the coordinator feeds it reports and completed steps and asks for the verdict.
 */

import type { ReportFailureRequest } from "@trainfleet/proto";
import { invalidField } from "@trainfleet/proto";

/** The longest message kept: a longer one is cut (the worker is exiting; it will not resend). */
export const maxFailureMessageChars = 2048;
const maxReasonChars = 64;
const camelCase = /^[A-Z][A-Za-z0-9]*$/;

/** A report as the coordinator keeps it: validated, its message cut to maxFailureMessageChars. */
export interface WorkerFailure {
  /** The member id, or "" when the worker failed before registering. */
  workerId: string;
  host: string;
  generation: number;
  reason: string;
  message: string;
}

/**
 * Checks a report's fields (INVALID_ARGUMENT naming the field: reason missing or not
 * CamelCase, neither worker_id nor host) and cuts an oversized message.
 */
export function validateFailureReport(
  request: Pick<ReportFailureRequest, "workerId" | "host" | "generation" | "reason" | "message">,
): WorkerFailure {
  const { workerId, host, generation, reason } = request;
  if (reason === "") throw invalidField("reason", "required: a CamelCase reason such as DataUnavailable, NonFiniteGradient or WorkerError");
  if (reason.length > maxReasonChars || !camelCase.test(reason)) {
    throw invalidField(
      "reason",
      `${JSON.stringify(reason.slice(0, maxReasonChars + 1))} is not a CamelCase reason of at most ${maxReasonChars} characters (such as DataUnavailable)`,
    );
  }
  if (workerId === "" && host === "")
    throw invalidField(
      "host",
      "required when worker_id is empty: say which worker failed (a worker that never registered reports by host)",
    );
  return { workerId, host, generation, reason, message: cutMessage(request.message) };
}

function cutMessage(message: string): string {
  if (message.length <= maxFailureMessageChars) return message;
  // The note's length depends on the count it gives: settle it (twice is enough).
  let note = "";
  for (let i = 0; i < 2; i++) note = ` [... ${message.length - (maxFailureMessageChars - note.length)} characters cut]`;
  return message.slice(0, maxFailureMessageChars - note.length) + note;
}

/** Who failed, for messages: `worker worker-3 (host h)`, or `a worker on host h that had not registered`. */
export function failedWorker(failure: WorkerFailure): string {
  if (failure.workerId === "") return `a worker on host ${failure.host} that had not registered`;
  return `worker ${failure.workerId}${failure.host === "" ? "" : ` (host ${failure.host})`}`;
}

/** The fatal reports since the last completed step. */
export class WorkerFailures {
  #sinceProgress: WorkerFailure[] = [];
  /** The completed steps when the count last went back to 0; none before the first step completed. */
  #sinceStep: number | undefined;

  record(failure: WorkerFailure): void {
    this.#sinceProgress.push(failure);
  }

  /** A step completed (`completed` steps are done): the count starts again. */
  progressed(completed: number): void {
    this.#sinceProgress = [];
    this.#sinceStep = completed;
  }

  /** Reports since the last completed step (JobStatus.worker_failures). */
  get count(): number {
    return this.#sinceProgress.length;
  }

  /**
   * The message the job fails with once there have been `replicas` (workers.replicas)
   * reports with no step completed in between; undefined until then.
   */
  verdict(replicas: number): string | undefined {
    const failures = this.#sinceProgress;
    const last = failures.at(-1);
    if (last === undefined || failures.length < Math.max(1, replicas)) return undefined;
    const since = this.#sinceStep === undefined ? "the coordinator started" : `step ${this.#sinceStep}`;
    const reasons = new Map<string, number>();
    for (const failure of failures) reasons.set(failure.reason, (reasons.get(failure.reason) ?? 0) + 1);
    const tally = [...reasons].map(([reason, count]) => `${reason} x${count}`).join(", ");
    const what = `${last.reason}${last.message === "" ? "" : `: ${last.message}`}`;
    const count = `${failures.length} fatal worker failure${failures.length === 1 ? "" : "s"}`;
    return `workers keep failing: ${count} (${tally}) and no step completed since ${since}, as many as workers.replicas (${replicas}); the last, from ${failedWorker(last)}: ${what}`;
  }
}
