/**
 * Every write goes through here: create, update (a no-op update changes nothing, not even the
 * resourceVersion; emptying the finalizers of an object being deleted deletes it) and delete
 * (preconditions, finalizers keep the object with a deletionTimestamp, propagation policies).
 */

import type { JsonObject } from "../../manifests.js";
import { isJsonObject } from "../../manifests.js";
import { conflict, notFound } from "./api-status.js";
import { jsonEqual } from "./json-value.js";
import { finalizersOf, metadataOf, nameOf, namespaceOf, timestamp } from "./object-meta.js";
import type { ObjectStore } from "./object-store.js";
import type { ResourceDefinition, ResourceTable } from "./resource-table.js";
import { resourceKey } from "./resource-table.js";

export type PropagationPolicy = "Orphan" | "Background" | "Foreground";

export interface DeleteOptions {
  propagationPolicy: PropagationPolicy;
  preconditions?: { uid?: string; resourceVersion?: string };
}

/** The finalizer that keeps an owner until the garbage collector has deleted its dependents. */
export const foregroundDeletion = "foregroundDeletion";

export interface ObjectWriter {
  create(resource: ResourceDefinition, object: JsonObject): JsonObject;
  /** Stores `updated` (prepared from `current`); returns what is now stored (or was deleted). */
  update(resource: ResourceDefinition, current: JsonObject, updated: JsonObject): JsonObject;
  /** `deleted` false: the object stays, with a deletionTimestamp, until its finalizers are gone. */
  delete(resource: ResourceDefinition, namespace: string, name: string, options: DeleteOptions): { deleted: boolean; object: JsonObject };
}

export function ownerUids(object: JsonObject): string[] {
  const references = metadataOf(object)["ownerReferences"];
  if (!Array.isArray(references)) return [];
  return references.flatMap((reference) => (isJsonObject(reference) && typeof reference["uid"] === "string" ? [reference["uid"]] : []));
}

function withoutResourceVersion(object: JsonObject): JsonObject {
  const copy = structuredClone(object);
  delete metadataOf(copy)["resourceVersion"];
  return copy;
}

export function createObjectWriter(store: ObjectStore, table: ResourceTable, now: () => Date): ObjectWriter {
  const update = (resource: ResourceDefinition, current: JsonObject, updated: JsonObject): JsonObject => {
    if (jsonEqual(withoutResourceVersion(current), withoutResourceVersion(updated))) return current;
    const key = resourceKey(resource);
    if (metadataOf(updated)["deletionTimestamp"] !== undefined && finalizersOf(updated).length === 0) {
      return store.remove(key, namespaceOf(current), nameOf(current), updated) ?? updated;
    }
    return store.update(key, updated);
  };

  /** Orphaning: the dependents lose their reference to the owner before it goes. */
  const orphanDependents = (uid: string) => {
    for (const { resourceKey: key, object } of store.all()) {
      if (!ownerUids(object).includes(uid)) continue;
      const metadata = metadataOf(object);
      const remaining = (metadata["ownerReferences"] as JsonObject[]).filter((reference) => reference["uid"] !== uid);
      if (remaining.length === 0) delete metadata["ownerReferences"];
      else metadata["ownerReferences"] = remaining;
      const dependentResource = table.byKey(key);
      if (dependentResource !== undefined) update(dependentResource, store.get(key, namespaceOf(object), nameOf(object))!, object);
    }
  };

  return {
    create: (resource, object) => store.create(resourceKey(resource), object),
    update,
    delete(resource, namespace, name, options) {
      const key = resourceKey(resource);
      const current = store.get(key, namespace, name);
      if (current === undefined) throw notFound(resource, name);
      const metadata = metadataOf(current);
      const { uid, resourceVersion } = options.preconditions ?? {};
      if (uid !== undefined && uid !== metadata["uid"])
        throw conflict(resource, name, `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${String(metadata["uid"])}`);
      if (resourceVersion !== undefined && resourceVersion !== metadata["resourceVersion"]) {
        throw conflict(
          resource,
          name,
          `Precondition failed: ResourceVersion in precondition: ${resourceVersion}, ResourceVersion in object meta: ${String(metadata["resourceVersion"])}`,
        );
      }
      // Deleting again what is already being deleted changes nothing.
      if (metadata["deletionTimestamp"] !== undefined) return { deleted: false, object: current };
      if (options.propagationPolicy === "Orphan") orphanDependents(String(metadata["uid"]));
      const finalizers = finalizersOf(current);
      if (options.propagationPolicy === "Foreground") finalizers.push(foregroundDeletion);
      if (finalizers.length === 0) return { deleted: true, object: store.remove(key, namespace, name)! };
      const marked = structuredClone(current);
      const markedMeta = metadataOf(marked);
      markedMeta["finalizers"] = finalizers;
      markedMeta["deletionTimestamp"] = timestamp(now());
      markedMeta["deletionGracePeriodSeconds"] = 0;
      // The real server bumps generation when it first sets deletionTimestamp.
      markedMeta["generation"] = (typeof markedMeta["generation"] === "number" ? markedMeta["generation"] : 0) + 1;
      return { deleted: false, object: store.update(key, marked) };
    },
  };
}
