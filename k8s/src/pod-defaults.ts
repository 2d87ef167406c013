/**
 * What every pod of a job gets unless its TrainingJob says otherwise: the Pod Security
 * "restricted" profile (non-root as the image's user, seccomp RuntimeDefault, no privilege
 * escalation, every capability dropped, a read-only root filesystem with a writable /tmp),
 * and CPU and memory requests with a memory limit per role, so that a namespace enforcing
 * that profile or a ResourceQuota admits the pods. A role's template merges its own
 * securityContext over these field by field (pod-templates.ts); its resources replace these
 * resource by resource.
 */
import type { V1PodSecurityContext, V1ResourceRequirements, V1SecurityContext, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { Role } from "./names.js";
import type { ResourceRequirements } from "./training-job.js";

/** The non-root user and group of the image (Dockerfile). */
export const imageUser = 65532;

/**
 * The pod's securityContext: the image's user and group, files on volumes writable by that
 * group (changed only when a volume's root does not match yet: a large checkpoint volume is
 * not walked at every start), and the runtime's default seccomp profile.
 */
export function defaultPodSecurityContext(): V1PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: imageUser,
    runAsGroup: imageUser,
    fsGroup: imageUser,
    fsGroupChangePolicy: "OnRootMismatch",
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** What "restricted" asks of each container, for the trainfleet container and any a template adds. */
export function restrictedContainerSecurityContext(): V1SecurityContext {
  return { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } };
}

/** The trainfleet container's: restricted, and nothing written outside its volumes. */
export function defaultContainerSecurityContext(): V1SecurityContext {
  return { ...restrictedContainerSecurityContext(), readOnlyRootFilesystem: true };
}

/** Scratch space at /tmp for Node and tf.js, since the root filesystem is read-only; bounded so that no pod fills its node's disk. */
export function scratchSpace(): { volume: V1Volume; mount: V1VolumeMount } {
  return { volume: { name: "trainfleet-tmp", emptyDir: { sizeLimit: "1Gi" } }, mount: { name: "trainfleet-tmp", mountPath: "/tmp" } };
}

/**
 * Each role's requests and memory limit when spec.<role>.resources names neither cpu nor
 * memory: enough for the built-in models, and a memory limit so that a leak ends in an
 * OOMKilled pod the operator restarts rather than a node under pressure. No CPU limit: a
 * throttled worker is a straggler.
 */
export const defaultResources: Readonly<Record<Role, { requests: Record<string, string>; limits: Record<string, string> }>> = {
  coordinator: { requests: { cpu: "250m", memory: "512Mi" }, limits: { memory: "1Gi" } },
  "parameter-server": { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "2Gi" } },
  worker: { requests: { cpu: "1", memory: "2Gi" }, limits: { memory: "4Gi" } },
};

/**
 * A role's container resources: the user's, and the role's default for each resource the
 * user does not name (in requests or limits). Naming a resource takes its request and limit
 * from the user alone, so that a default never contradicts them (a default request above the
 * user's limit); a GPU limit alone keeps the default CPU and memory. Quantities as strings
 * (the CRD also takes plain numbers).
 */
export function podResources(role: Role, given: ResourceRequirements | undefined): V1ResourceRequirements {
  const named = new Set([...Object.keys(given?.requests ?? {}), ...Object.keys(given?.limits ?? {})]);
  const merged = (defaults: Record<string, string>, user: Record<string, string | number> | undefined) => {
    const result: Record<string, string> = {};
    for (const [name, value] of Object.entries(defaults)) if (!named.has(name)) result[name] = value;
    for (const [name, value] of Object.entries(user ?? {})) result[name] = String(value);
    return result;
  };
  const { requests, limits } = defaultResources[role];
  const result: V1ResourceRequirements = {};
  const requested = merged(requests, given?.requests);
  const limited = merged(limits, given?.limits);
  if (Object.keys(requested).length > 0) result.requests = requested;
  if (Object.keys(limited).length > 0) result.limits = limited;
  return result;
}
