/**
 * Admission for tests: checks a test adds see every object being created, after its name is
 * generated and before it is stored (and before the AlreadyExists check), where a real server
 * runs its validating admission (webhooks, Pod Security, ResourceQuota, the Priority plugin).
 * A check refuses by returning the error to answer with; the builders below make the refusals
 * in the Status shape and the words of the real server, so that a client sees what it would
 * see on a cluster.
 */
import type { JsonObject } from "../../manifests.js";
import type { ResourceName } from "./api-status.js";
import { ApiStatusError, qualified } from "./api-status.js";
import type { ResourceDefinition } from "./resource-table.js";

export interface AdmissionRequest {
  resource: ResourceDefinition;
  /** "" for cluster-scoped resources. */
  namespace: string;
  /** The object's name (generated already when it came with generateName). */
  name: string;
  /** The object as it will be stored. */
  object: JsonObject;
}

/** Returns the refusal to answer the create with, or undefined to admit it. */
export type AdmissionCheck = (request: AdmissionRequest) => ApiStatusError | undefined;

export interface AddedAdmissionCheck {
  /** The check stops refusing anything. */
  remove(): void;
}

export interface Admission {
  add(check: AdmissionCheck): AddedAdmissionCheck;
  /** Throws the first refusal of the checks, in the order they were added. */
  review(request: AdmissionRequest): void;
}

export function createAdmission(): Admission {
  const checks = new Set<AdmissionCheck>();
  return {
    add(check) {
      const added = (request: AdmissionRequest) => check(request);
      checks.add(added);
      return { remove: () => void checks.delete(added) };
    },
    review(request) {
      for (const check of checks) {
        const refusal = check(request);
        if (refusal !== undefined) throw refusal;
      }
    },
  };
}

/** 403 Forbidden as admission plugins answer it: `pods "NAME" is forbidden: WHY`. */
export function forbidden(resource: ResourceName, name: string, why: string): ApiStatusError {
  const details = resource.group === "" ? { name, kind: resource.plural } : { name, group: resource.group, kind: resource.plural };
  return new ApiStatusError(403, "Forbidden", `${qualified(resource)} "${name}" is forbidden: ${why}`, details);
}

const pods: ResourceName = { group: "", plural: "pods" };

/**
 * A pod the namespace's Pod Security level refuses (pod-security.kubernetes.io/enforce):
 * `violations` as the admission plugin lists them, e.g. `allowPrivilegeEscalation != false
 * (container "trainfleet" must set securityContext.allowPrivilegeEscalation=false)`.
 */
export function podSecurityViolation(podName: string, violations: readonly string[], level = "restricted:latest"): ApiStatusError {
  return forbidden(pods, podName, `violates PodSecurity "${level}": ${violations.join(", ")}`);
}

/** What a ResourceQuota admits no more of, each as `resource=quantity` (cpu=1, requests.memory=2Gi, count/secrets=1). */
export interface QuotaUse {
  requested: readonly string[];
  used: readonly string[];
  limited: readonly string[];
}

/** An object a ResourceQuota has no room for: `pods "x" is forbidden: exceeded quota: q, requested: cpu=1, used: cpu=2, limited: cpu=2`. */
export function quotaExceeded(resource: ResourceName, name: string, quota: string, use: QuotaUse): ApiStatusError {
  return forbidden(
    resource,
    name,
    `exceeded quota: ${quota}, requested: ${use.requested.join(",")}, used: ${use.used.join(",")}, limited: ${use.limited.join(",")}`,
  );
}

/** A pod that names a PriorityClass that does not exist (the Priority admission plugin). */
export function missingPriorityClass(podName: string, priorityClassName: string): ApiStatusError {
  return forbidden(pods, podName, `no PriorityClass with name ${priorityClassName} was found`);
}

/**
 * A validating webhook's denial, as the API server wraps it: `admission webhook "NAME" denied
 * the request: MESSAGE`, with the code and reason the webhook answered (controller-runtime's
 * admission.Denied answers 403 Forbidden).
 */
export function webhookDenied(webhook: string, message: string, code = 403): ApiStatusError {
  return new ApiStatusError(
    code,
    code === 403 ? "Forbidden" : "BadRequest",
    `admission webhook "${webhook}" denied the request: ${message}`,
  );
}
