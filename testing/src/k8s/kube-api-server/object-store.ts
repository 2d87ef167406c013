/**
 * The objects of every served resource, with one global resourceVersion counter (as etcd's
 * revision): each write takes the next number, stamps it on the object as a string and appends
 * the change to the log that watches replay. The store checks nothing; the handlers do.
 */
import type { JsonObject } from "../../manifests.js";
import type { ChangeLog } from "./change-log.js";
import { createChangeLog } from "./change-log.js";
import { metadataOf } from "./object-meta.js";

export interface ObjectStore {
  readonly changes: ChangeLog;
  /** The resourceVersion of the newest write (what a list reports in its ListMeta). */
  resourceVersion(): number;
  get(resourceKey: string, namespace: string, name: string): JsonObject | undefined;
  /** Objects of a resource in one namespace (or all, when undefined), ordered by namespace and name. */
  list(resourceKey: string, namespace?: string): JsonObject[];
  /** Every object of every resource, with its resource key (for the garbage collector). */
  all(): { resourceKey: string; object: JsonObject }[];
  create(resourceKey: string, object: JsonObject): JsonObject;
  update(resourceKey: string, object: JsonObject): JsonObject;
  /** Deletes the object; `last` is its final state when that differs from the stored one (finalizers just emptied). */
  remove(resourceKey: string, namespace: string, name: string, last?: JsonObject): JsonObject | undefined;
}

export interface ObjectStoreOptions {
  /** How many changes watches can replay (older ones answer 410). */
  historyLimit: number;
  /** The resourceVersion before the first write: real ones are large, opaque numbers. */
  firstResourceVersion: number;
}

export function createObjectStore(options: ObjectStoreOptions): ObjectStore {
  const objects = new Map<string, Map<string, JsonObject>>();
  const changes = createChangeLog(options.historyLimit);
  let revision = options.firstResourceVersion;
  changes.compact(revision);
  const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;
  const bucket = (resourceKey: string) => {
    let found = objects.get(resourceKey);
    if (found === undefined) objects.set(resourceKey, (found = new Map()));
    return found;
  };
  const stamp = (object: JsonObject) => {
    revision++;
    const stamped = structuredClone(object);
    metadataOf(stamped)["resourceVersion"] = String(revision);
    return stamped;
  };
  const identity = (object: JsonObject) => {
    const metadata = metadataOf(object);
    return keyOf(String(metadata["namespace"] ?? ""), String(metadata["name"]));
  };
  return {
    changes,
    resourceVersion: () => revision,
    get: (resourceKey, namespace, name) => {
      const found = objects.get(resourceKey)?.get(keyOf(namespace, name));
      return found === undefined ? undefined : structuredClone(found);
    },
    list(resourceKey, namespace) {
      const entries = [...(objects.get(resourceKey)?.entries() ?? [])].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return entries
        .filter(([key]) => namespace === undefined || key.startsWith(`${namespace}/`))
        .map(([, object]) => structuredClone(object));
    },
    all: () =>
      [...objects.entries()].flatMap(([resourceKey, bucketOf]) =>
        [...bucketOf.values()].map((object) => ({ resourceKey, object: structuredClone(object) })),
      ),
    create(resourceKey, object) {
      const stored = stamp(object);
      bucket(resourceKey).set(identity(stored), stored);
      changes.append({ type: "ADDED", resourceVersion: revision, resourceKey, object: structuredClone(stored) });
      return structuredClone(stored);
    },
    update(resourceKey, object) {
      const key = identity(object);
      const previous = bucket(resourceKey).get(key);
      const stored = stamp(object);
      bucket(resourceKey).set(key, stored);
      const change = { type: "MODIFIED" as const, resourceVersion: revision, resourceKey, object: structuredClone(stored) };
      changes.append(previous === undefined ? change : { ...change, previous: structuredClone(previous) });
      return structuredClone(stored);
    },
    remove(resourceKey, namespace, name, last) {
      const key = keyOf(namespace, name);
      const previous = objects.get(resourceKey)?.get(key);
      if (previous === undefined) return undefined;
      objects.get(resourceKey)!.delete(key);
      // The DELETED event carries the object at the deletion's own resourceVersion.
      const final = stamp(last ?? previous);
      changes.append({
        type: "DELETED",
        resourceVersion: revision,
        resourceKey,
        object: structuredClone(final),
        previous: structuredClone(previous),
      });
      return final;
    },
  };
}
