/**
 * The history of changes that watches replay: every write appends one change at its
 * resourceVersion. The history is bounded (and can be compacted on demand), so a watch from a
 * resourceVersion older than what is kept cannot be served; that is the 410 an informer
 * answers with a fresh list.
 */
import type { JsonObject } from "../../manifests.js";

export type ChangeType = "ADDED" | "MODIFIED" | "DELETED";

export interface Change {
  type: ChangeType;
  resourceVersion: number;
  /** Which resource (see resourceKey) the object is of. */
  resourceKey: string;
  /** The object after the change (for DELETED, the last state, at the deletion's resourceVersion). */
  object: JsonObject;
  /** The object before the change, so a watch with a selector can tell an object leaving it. */
  previous?: JsonObject;
}

export type ChangeListener = (change: Change) => void;

export interface ChangeLog {
  append(change: Change): void;
  /** The changes after `resourceVersion`, or "expired" when some of them are no longer kept. */
  since(resourceVersion: number): readonly Change[] | "expired";
  /** The newest resourceVersion the history no longer covers: watches must start at or after it. */
  compactedThrough(): number;
  /** Forgets every change up to `resourceVersion`. */
  compact(resourceVersion: number): void;
  subscribe(listener: ChangeListener): () => void;
}

export function createChangeLog(limit: number): ChangeLog {
  const changes: Change[] = [];
  const listeners = new Set<ChangeListener>();
  let compactedThrough = 0;
  const forgetOldest = () => {
    const dropped = changes.shift();
    if (dropped !== undefined) compactedThrough = dropped.resourceVersion;
  };
  return {
    append(change) {
      changes.push(change);
      while (changes.length > limit) forgetOldest();
      // A copy of the set: a listener may unsubscribe (a watch ending) while being told.
      for (const listener of [...listeners]) listener(change);
    },
    since(resourceVersion) {
      if (resourceVersion < compactedThrough) return "expired";
      return changes.filter((change) => change.resourceVersion > resourceVersion);
    },
    compactedThrough: () => compactedThrough,
    compact(resourceVersion) {
      while (changes.length > 0 && changes[0]!.resourceVersion <= resourceVersion) forgetOldest();
      compactedThrough = Math.max(compactedThrough, resourceVersion);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
