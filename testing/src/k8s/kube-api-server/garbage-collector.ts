/**
 * Background garbage collection by ownerReferences, as kube-controller-manager's collector does
 * it (but in-process and immediate): a dependent whose owners are all gone is deleted, the
 * dependents of an owner in foreground deletion are deleted, and such an owner loses its
 * foregroundDeletion finalizer (and so goes) once no dependents remain. Sweeps run on the next
 * turn of the event loop after a deletion, like the real collector reacting to a watch.
 */
import type { JsonObject } from "../../manifests.js";
import { finalizersOf, metadataOf, nameOf, namespaceOf } from "./object-meta.js";
import type { ObjectStore } from "./object-store.js";
import type { ResourceTable } from "./resource-table.js";
import type { ObjectWriter } from "./writes.js";
import { foregroundDeletion, ownerUids } from "./writes.js";

export interface GarbageCollector {
  /** Resolves once no sweep is pending (what a test awaits instead of sleeping). */
  settled(): Promise<void>;
  close(): void;
}

function uidOf(object: JsonObject): string {
  return String(metadataOf(object)["uid"]);
}

function inForegroundDeletion(object: JsonObject): boolean {
  return metadataOf(object)["deletionTimestamp"] !== undefined && finalizersOf(object).includes(foregroundDeletion);
}

export function startGarbageCollector(store: ObjectStore, table: ResourceTable, writer: ObjectWriter): GarbageCollector {
  let pending: Promise<void> | undefined;
  let closed = false;

  /** One pass; true when it deleted or changed anything (which may make more work). */
  const pass = (): boolean => {
    const objects = store.all();
    const byUid = new Map(objects.map((entry) => [uidOf(entry.object), entry.object]));
    let acted = false;
    for (const { resourceKey, object } of objects) {
      const owners = ownerUids(object);
      if (owners.length === 0 || metadataOf(object)["deletionTimestamp"] !== undefined) continue;
      const present = owners.map((uid) => byUid.get(uid)).filter((owner) => owner !== undefined);
      if (present.length > 0 && !present.some(inForegroundDeletion)) continue;
      const resource = table.byKey(resourceKey);
      if (resource === undefined) continue;
      writer.delete(resource, namespaceOf(object), nameOf(object), { propagationPolicy: "Background" });
      acted = true;
    }
    for (const { resourceKey, object } of store.all()) {
      if (!inForegroundDeletion(object)) continue;
      const uid = uidOf(object);
      if (store.all().some((entry) => ownerUids(entry.object).includes(uid))) continue;
      const resource = table.byKey(resourceKey);
      if (resource === undefined) continue;
      const updated = structuredClone(object);
      metadataOf(updated)["finalizers"] = finalizersOf(object).filter((finalizer) => finalizer !== foregroundDeletion);
      writer.update(resource, object, updated);
      acted = true;
    }
    return acted;
  };

  const schedule = () => {
    if (pending !== undefined || closed) return;
    pending = new Promise((resolve) =>
      setImmediate(() => {
        // Changes made by the pass itself schedule nothing: the loop runs until a pass does nothing.
        if (!closed) while (pass());
        pending = undefined;
        resolve();
      }),
    );
  };

  const unsubscribe = store.changes.subscribe((change) => {
    if (change.type === "DELETED" || inForegroundDeletion(change.object)) schedule();
  });

  return {
    async settled() {
      while (pending !== undefined) await pending;
    },
    close() {
      closed = true;
      unsubscribe();
    },
  };
}
