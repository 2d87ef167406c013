/**
 * The narrow logger every library takes; pino satisfies it and is created only in the
 * cli's main. Fields: jobId, workerId, rank, step, psShard, generation.
 */
export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  child(fields: object): Logger;
}

/** A logger that drops everything: the default in tests and library use. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

/** The fields a process's log context may carry (house style's log fields). */
export type LogContextKey = "jobId" | "workerId" | "rank" | "generation" | "step" | "psShard";

/** A log-context value: a plain value, or a function read each time a line is written (a cheap getter, such as a shard's version). */
export type LogValue = string | number | boolean | (() => string | number | boolean | undefined);

/**
 * What this process is working on, added to every log line: the cli's logger reads it
 * through pino's `mixin`. Each role keeps it current as its state changes (the coordinator
 * from its job events, a worker on registering, on each rank assignment and each step, a
 * shard from its generation and version), so lines logged by code that knows none of this
 * (a gRPC server, the event bus, a heartbeat) still say which job, generation and step they
 * belong to. A field given on a call, and a child logger's binding, win over the context's.
 *
 * One per process (`logContext`): a colocated worker and its shard share it, and the
 * worker's generation and step are then the process's.
 */
export class LogContext {
  readonly #values = new Map<LogContextKey, LogValue>();

  /**
   * Sets fields; an undefined value removes its field. Returns what takes these fields out
   * again, each unless it was set anew since (so a colocated shard that ends first leaves
   * its worker's generation and step).
   */
  set(fields: { readonly [K in LogContextKey]?: LogValue | undefined }): () => void {
    const set: Array<[LogContextKey, LogValue]> = [];
    for (const key in fields) {
      const value = fields[key as LogContextKey];
      if (value === undefined) this.#values.delete(key as LogContextKey);
      else {
        this.#values.set(key as LogContextKey, value);
        set.push([key as LogContextKey, value]);
      }
    }
    return () => {
      for (const [key, value] of set) if (this.#values.get(key) === value) this.#values.delete(key);
    };
  }

  clear(...keys: LogContextKey[]): void {
    for (const key of keys) this.#values.delete(key);
  }

  /**
   * The fields now, in a new object each call (pino merges a line's own fields into it),
   * without those in `omit`; a function's value is read now, and its field left out when
   * it returns undefined.
   */
  fields(omit?: ReadonlySet<string>): Record<string, string | number | boolean> {
    const fields: Record<string, string | number | boolean> = {};
    for (const [key, value] of this.#values) {
      if (omit?.has(key) === true) continue;
      const now = typeof value === "function" ? value() : value;
      if (now !== undefined) fields[key] = now;
    }
    return fields;
  }
}

/** This process's log context. */
export const logContext = new LogContext();
