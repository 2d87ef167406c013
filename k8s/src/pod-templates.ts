/**
 * A role's template (spec.coordinator.template, spec.parameterServers.template,
 * spec.workers.template) merged over the pods the operator builds for that role, as a
 * strategic merge patch would: labels and annotations added (the operator's own labels win);
 * pod spec fields set; containers, init containers and volumes merged by name (a container's
 * env by name, its volume mounts by path); securityContexts merged field by field over the
 * operator's (null removes a field), so that a template that sets runAsUser keeps seccomp and
 * the dropped capabilities. The trainfleet container's command, args, image and ports and the
 * pod's restart policy stay the operator's. A container a template adds gets what the Pod
 * Security "restricted" profile asks of each container, under its own securityContext.
 */
import type { V1Container, V1EnvVar, V1Pod, V1PodSpec, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { JsonObject, JsonValue } from "./json.js";
import { isJsonObject } from "./json.js";
import { restrictedContainerSecurityContext } from "./pod-defaults.js";
import type { PodTemplate } from "./training-job.js";

export function withTemplate(built: V1Pod, template: PodTemplate | undefined): V1Pod {
  if (template === undefined) return built;
  const metadata = { ...built.metadata! };
  metadata.labels = { ...template.metadata?.labels, ...metadata.labels };
  const annotations = { ...template.metadata?.annotations, ...metadata.annotations };
  if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
  const builtSpec = built.spec!;
  const spec: Record<string, unknown> = { ...(builtSpec as unknown as Record<string, unknown>) };
  for (const [key, value] of Object.entries(template.spec ?? {})) {
    if (key === "restartPolicy") continue;
    if ((key === "containers" || key === "initContainers") && Array.isArray(value))
      spec[key] = mergeContainers(key === "containers" ? builtSpec.containers : (builtSpec.initContainers ?? []), value);
    // The template's volumes join the operator's (the data volume stays).
    else if (key === "volumes" && Array.isArray(value))
      spec.volumes = mergeByKey(builtSpec.volumes ?? [], value as unknown as V1Volume[], (volume) => volume.name);
    else if (key === "securityContext") spec.securityContext = mergeFields(builtSpec.securityContext, value);
    else spec[key] = value;
  }
  return { ...built, metadata, spec: spec as unknown as V1PodSpec };
}

function mergeContainers(built: readonly V1Container[], overrides: readonly JsonValue[]): V1Container[] {
  const result = built.map((container) => ({ ...container }));
  for (const override of overrides) {
    if (!isJsonObject(override) || typeof override["name"] !== "string") continue;
    const index = result.findIndex((container) => container.name === override["name"]);
    if (index < 0) {
      const securityContext = mergeFields(restrictedContainerSecurityContext(), override["securityContext"]);
      result.push({ ...(override as unknown as V1Container), securityContext });
      continue;
    }
    const { command: _command, args: _args, ports: _ports, image: _image, env, volumeMounts, securityContext, ...rest } = override;
    const merged: V1Container = { ...result[index]!, ...(rest as Partial<V1Container>) };
    if (Array.isArray(env)) merged.env = mergeByKey(merged.env ?? [], env as unknown as V1EnvVar[], (variable) => variable.name);
    if (Array.isArray(volumeMounts))
      merged.volumeMounts = mergeByKey(merged.volumeMounts ?? [], volumeMounts as unknown as V1VolumeMount[], (mount) => mount.mountPath);
    if (securityContext !== undefined) merged.securityContext = mergeFields(merged.securityContext, securityContext);
    result[index] = merged;
  }
  return result;
}

/** `base` with each of `overrides` replacing the entry of the same key, or added after them. */
function mergeByKey<T>(base: readonly T[], overrides: readonly T[], key: (item: T) => string): T[] {
  const result = [...base];
  for (const override of overrides) {
    const at = result.findIndex((item) => key(item) === key(override));
    if (at >= 0) result[at] = override;
    else result.push(override);
  }
  return result;
}

/** `override`'s fields over `base`'s, objects merged the same way, lists and values replaced, null removing the field. */
function mergeFields<T extends object>(base: T | undefined, override: unknown): T {
  const result: Record<string, unknown> = { ...(base as Record<string, unknown> | undefined) };
  if (!isJsonObject(override)) return result as T;
  for (const [key, value] of Object.entries(override as JsonObject)) {
    if (value === null) delete result[key];
    else if (isJsonObject(value)) result[key] = mergeFields(isJsonObject(result[key]) ? (result[key] as object) : {}, value);
    else result[key] = value;
  }
  return result as T;
}
