/**
 * A bounded least-recently-used cache of decoded blocks. Loads in flight are shared (a
 * prefetch and the batch that needs the same block read it once) and count once they are
 * decoded; a failed load is forgotten, so the next request tries again.
 */
export interface BlockCache<T> {
  /** The cached value, or the one `load` produces (and caches). */
  get(key: number, load: () => Promise<T>): Promise<T>;
  /** Bytes held by decoded entries. */
  readonly bytes: number;
  clear(): void;
}

interface Entry<T> {
  value: Promise<T>;
  bytes: number;
}

export function createBlockCache<T>(options: { maxBytes: number; sizeOf(value: T): number }): BlockCache<T> {
  // A Map iterates in insertion order: re-inserting on use keeps the least recent first.
  const entries = new Map<number, Entry<T>>();
  let bytes = 0;

  const evict = (keep: number) => {
    for (const [key, entry] of entries) {
      if (bytes <= options.maxBytes) return;
      if (key === keep || entry.bytes === 0) continue;
      entries.delete(key);
      bytes -= entry.bytes;
    }
  };

  return {
    get(key, load) {
      const hit = entries.get(key);
      if (hit !== undefined) {
        entries.delete(key);
        entries.set(key, hit);
        return hit.value;
      }
      const entry: Entry<T> = { value: load(), bytes: 0 };
      entries.set(key, entry);
      entry.value.then(
        (value) => {
          if (entries.get(key) !== entry) return;
          entry.bytes = options.sizeOf(value);
          bytes += entry.bytes;
          evict(key);
        },
        () => {
          if (entries.get(key) === entry) entries.delete(key);
        },
      );
      return entry.value;
    },
    get bytes() {
      return bytes;
    },
    clear() {
      entries.clear();
      bytes = 0;
    },
  };
}
