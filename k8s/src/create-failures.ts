/**
 * Failures to create (or renew) a job's objects, on the job itself. Whatever the API server
 * answers instead of creating one of them (an admission webhook's denial, Pod Security, a
 * ResourceQuota with no room, a PriorityClass or PodGroup API that does not exist, an invalid
 * object, a 5xx) shows as the condition CreateFailed: True, with a reason for its kind
 * (QuotaExceeded, PodSecurityViolation, AdmissionWebhookDenied, else the Status reason such
 * as Forbidden or NotFound) and the API server's own message, plus a Warning Event with the
 * same, in the pass that met it. The next pass whose creates all succeed sets it False
 * (ObjectsCreated). Deployments say the same with ReplicaFailure (FailedCreate).
 *
 * Why here and not in reconcile.ts: a reconcile is pure and cannot know what the API server
 * will answer. apply-plan.ts tries the plan's creates, then folds what became of them into the
 * status it writes in the same pass (this file, pure as well). Writing it in the same pass is
 * also what keeps the gang deadline (admission.ts) counting from the first attempt: the
 * WaitingForGang condition that holds its start is in that status.
 *
 * Refusals (4xx) are not errors of the reconcile: the job is looked at again as any job is
 * (every statusPollMs), and a refused object is tried again then. Failures that may pass by
 * themselves (5xx, 429, 408, no answer at all) are recorded the same way, then the reconcile
 * is retried with the operator's backoff.
 */
import { ApiException } from "@kubernetes/client-node";
import { Conditions } from "./conditions.js";
import type { KubeEvent, ReconcilePlan } from "./reconcile-plan.js";
import type { TrainingJob, TrainingJobStatus } from "./training-job.js";

export interface CreateFailure {
  /** What was being made: "Pod mnist-coordinator", "the pods' Secrets". */
  what: string;
  /** CamelCase, for the condition and the Event. */
  reason: string;
  /** The API server's message (the Status's), or the error's. */
  message: string;
  /** It may pass by itself (5xx, 429, 408, no answer): the reconcile is retried with backoff. */
  transient: boolean;
  error: unknown;
}

/** Longest condition message kept (the CRD allows 32768) and longest Event message (what kubectl and recorders keep). */
const conditionMessageLimit = 4096;
const eventMessageLimit = 1024;

/** What the API server (or the connection) answered when creating `what`. */
export function createFailure(what: string, error: unknown): CreateFailure {
  if (!(error instanceof ApiException)) {
    const message = error instanceof Error ? error.message : String(error);
    return { what, reason: "CreateError", message, transient: true, error };
  }
  const code = error.code;
  const status = statusOf(error.body);
  const message = status.message ?? `HTTP ${code}`;
  return { what, reason: reasonOf(code, status.reason, message), message, transient: code >= 500 || code === 429 || code === 408, error };
}

/** The Status object a failed call's body carries; client-node keeps the body as text. */
function statusOf(body: unknown): { message?: string; reason?: string } {
  let parsed: unknown = body;
  if (typeof body === "string") {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.trim() === "" ? {} : { message: body.trim() };
    }
  }
  if (typeof parsed !== "object" || parsed === null) return {};
  const { message, reason } = parsed as Record<string, unknown>;
  return {
    ...(typeof message === "string" && message !== "" ? { message } : {}),
    ...(typeof reason === "string" && reason !== "" ? { reason } : {}),
  };
}

const reasonOfCode: Record<number, string> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  408: "Timeout",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

/** The refusals a user meets most get reasons of their own; the rest keep the API server's Status reason. */
function reasonOf(code: number, statusReason: string | undefined, message: string): string {
  if (message.includes("exceeded quota")) return "QuotaExceeded";
  if (message.includes("violates PodSecurity")) return "PodSecurityViolation";
  if (/admission webhook ".*" denied the request/.test(message)) return "AdmissionWebhookDenied";
  if (statusReason !== undefined && /^[A-Z][A-Za-z]*$/.test(statusReason)) return statusReason;
  return reasonOfCode[code] ?? (code >= 500 ? "InternalError" : "Refused");
}

/** What the user can do about it, after the API server's words (the operator tries again either way). */
function hintFor(failure: CreateFailure): string {
  switch (failure.reason) {
    case "QuotaExceeded":
      return "; the namespace's ResourceQuota has no room: raise it, or ask for less (spec.coordinator, spec.parameterServers and spec.workers resources)";
    case "PodSecurityViolation":
      return "; the namespace's Pod Security level (label pod-security.kubernetes.io/enforce) refuses the pod: remove what a spec.*.template adds against it";
    case "NotFound":
      // The API server's words say only "not found" when a whole API is missing.
      if (failure.what.startsWith("Workload "))
        return " (the API server serves no kueue.x-k8s.io/v1beta1 Workloads: Kueue is not installed); install Kueue, or remove spec.scheduling.queueName";
      return "";
    default:
      return "";
  }
}

export function describeFailure(failure: CreateFailure): string {
  return `creating ${failure.what}: ${failure.message}${hintFor(failure)}`;
}

function truncated(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

/**
 * The status and Events that the plan's creates leave: CreateFailed set True from `failures`
 * (an Event when its reason or message is new), or set False once a pass meets none (not on a
 * finished job, whose last refusal may be why it failed: a GangTimeout, say). `status` is
 * undefined when the status to write is still the job's own.
 */
export function recordCreateOutcome(
  job: TrainingJob,
  plan: Pick<ReconcilePlan, "status">,
  failures: readonly CreateFailure[],
  now: Date,
): { status: TrainingJobStatus | undefined; events: KubeEvent[] } {
  const base = plan.status ?? job.status ?? {};
  const conditions = new Conditions(base.conditions, now, job.metadata.generation);
  const before = conditions.get("CreateFailed");
  const first = failures[0];
  if (first !== undefined) {
    const message = truncated(failures.map(describeFailure).join(" | "), conditionMessageLimit);
    if (before?.status === "True" && before.reason === first.reason && before.message === message)
      return { status: plan.status, events: [] };
    conditions.set("CreateFailed", "True", first.reason, message);
    return {
      status: { ...base, conditions: conditions.list() },
      events: [{ type: "Warning", reason: first.reason, message: truncated(message, eventMessageLimit) }],
    };
  }
  const finished = conditions.isTrue("Failed") || conditions.isTrue("Succeeded");
  if (before?.status !== "True" || finished) return { status: plan.status, events: [] };
  const message = "every object the job needs now was created";
  conditions.set("CreateFailed", "False", "ObjectsCreated", message);
  return { status: { ...base, conditions: conditions.list() }, events: [{ type: "Normal", reason: "ObjectsCreated", message }] };
}
