/**
 * Errors as the API server sends them: a `Status` object (apiVersion v1, status Failure) with
 * the HTTP code, a machine-readable reason and details naming the object. Every failure of the
 * test server is an `ApiStatusError`, so clients see exactly the body a real server would send.
 */
import type { JsonObject } from "../../manifests.js";

/** The `reason` values of metav1.StatusReason that this server sends. */
export type StatusReason =
  | "BadRequest"
  | "NotFound"
  | "AlreadyExists"
  | "Conflict"
  | "Invalid"
  | "Gone"
  | "Expired"
  | "MethodNotAllowed"
  | "UnsupportedMediaType"
  | "TooManyRequests"
  | "InternalError"
  | "ServiceUnavailable"
  | "Timeout"
  | "Forbidden"
  | "Unauthorized"
  | "Unknown";

/** metav1.StatusDetails: which object the failure is about. */
export interface StatusDetails {
  name?: string;
  group?: string;
  /** The resource's plural ("pods", "trainingjobs"), as the real server fills it in. */
  kind?: string;
  uid?: string;
  causes?: { reason: string; message: string; field: string }[];
  retryAfterSeconds?: number;
}

export class ApiStatusError extends Error {
  override readonly name = "ApiStatusError";

  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  /** The Status object the response carries. */
  status(): JsonObject {
    const status: JsonObject = {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
    };
    if (this.details !== undefined) status["details"] = JSON.parse(JSON.stringify(this.details)) as JsonObject;
    status["code"] = this.code;
    return status;
  }

  /** Anything caught, as a Status error: an unexpected exception becomes a 500 InternalError. */
  static from(error: unknown): ApiStatusError {
    if (error instanceof ApiStatusError) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new ApiStatusError(500, "InternalError", `Internal error occurred: ${message}`);
  }
}

/** How the real server names a resource in messages: "pods", "trainingjobs.trainfleet.dev". */
export interface ResourceName {
  group: string;
  plural: string;
}

export function qualified(resource: ResourceName): string {
  return resource.group === "" ? resource.plural : `${resource.plural}.${resource.group}`;
}

function detailsOf(resource: ResourceName, name: string): StatusDetails {
  return resource.group === "" ? { name, kind: resource.plural } : { name, group: resource.group, kind: resource.plural };
}

export function notFound(resource: ResourceName, name: string): ApiStatusError {
  return new ApiStatusError(404, "NotFound", `${qualified(resource)} "${name}" not found`, detailsOf(resource, name));
}

/** A path the server does not serve at all (an unknown resource or subresource). */
export function pathNotFound(): ApiStatusError {
  return new ApiStatusError(404, "NotFound", "the server could not find the requested resource", {});
}

export function alreadyExists(resource: ResourceName, name: string): ApiStatusError {
  return new ApiStatusError(409, "AlreadyExists", `${qualified(resource)} "${name}" already exists`, detailsOf(resource, name));
}

/** A stale resourceVersion (or a failed uid precondition): the optimistic-concurrency 409. */
export function conflict(
  resource: ResourceName,
  name: string,
  why = "the object has been modified; please apply your changes to the latest version and try again",
): ApiStatusError {
  return new ApiStatusError(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualified(resource)} "${name}": ${why}`,
    detailsOf(resource, name),
  );
}

/** 422 with one cause per field, as validation failures are reported. */
export function invalid(resource: ResourceName & { kind: string }, name: string, field: string, problem: string): ApiStatusError {
  const details: StatusDetails = {
    ...detailsOf(resource, name),
    kind: resource.kind,
    causes: [{ reason: "FieldValueInvalid", message: `Invalid value: ${problem}`, field }],
  };
  return new ApiStatusError(422, "Invalid", `${resource.kind} "${name}" is invalid: ${field}: Invalid value: ${problem}`, details);
}

export function badRequest(message: string): ApiStatusError {
  return new ApiStatusError(400, "BadRequest", message);
}

export function methodNotAllowed(method: string): ApiStatusError {
  return new ApiStatusError(405, "MethodNotAllowed", `the server does not allow this method on the requested resource (${method})`, {});
}

export function unsupportedMediaType(contentType: string, accepted: readonly string[]): ApiStatusError {
  return new ApiStatusError(
    415,
    "UnsupportedMediaType",
    `the body of the request was in an unknown format (${contentType || "none"}) - accepted media types include: ${accepted.join(", ")}`,
  );
}

/** The watch error for a resourceVersion older than the history kept (what an informer re-lists on). */
export function expired(requested: string, oldest: string): ApiStatusError {
  return new ApiStatusError(410, "Expired", `too old resource version: ${requested} (${oldest})`);
}

const reasonOfCode: Record<number, StatusReason> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  410: "Gone",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

/** The Status a fault rule injects for `code`, with the reason the real server uses for it. */
export function injected(code: number, message?: string, retryAfterSeconds?: number): ApiStatusError {
  const reason = reasonOfCode[code] ?? "Unknown";
  const details: StatusDetails | undefined = retryAfterSeconds === undefined ? undefined : { retryAfterSeconds };
  return new ApiStatusError(code, reason, message ?? `injected fault: ${code} ${reason}`, details);
}
