/**
 * The only place a logger is created. JSON lines (pino) when stdout is a file or pipe, as
 * for the processes of a local fleet whose logs go to the job folder; pretty output when
 * stdout is a terminal. Every line carries the process's log context (jobId, workerId,
 * rank, generation, step, psShard: whichever it has now), through pino's mixin.
 */

import { createRequire } from "node:module";
import type { LogContext, Logger } from "@trainfleet/runtime";
import { logContext } from "@trainfleet/runtime";
import type { LoggerOptions } from "pino";
import { pino } from "pino";
import type Pretty from "pino-pretty";

export const logLevels = ["debug", "info", "warn", "error"] as const;

export function createLogger(level: string, base: Record<string, unknown>): Logger {
  const options = loggerOptions(level, base, logContext);
  if (!process.stdout.isTTY) return pino(options);
  // Required only here: the processes of a fleet log to files, and need not load it.
  const pretty = createRequire(import.meta.url)("pino-pretty") as typeof Pretty;
  return pino(options, pretty({ sync: true, ignore: "pid,hostname" }));
}

/**
 * pino's options: the level, the base fields and the pid, and the context's fields on
 * every line. pino writes a child logger's bindings first and then the line's fields,
 * into which the mixin's object is merged with the line's own fields winning; a key the
 * child binds is left out of the mixin's object, so no line has a key twice and a
 * binding wins over the context too.
 */
export function loggerOptions(level: string, base: Record<string, unknown>, context: LogContext): LoggerOptions {
  return { level, base: { ...base, pid: process.pid }, mixin: (_fields, _level, logger) => context.fields(boundKeys(logger)) };
}

/** The keys each logger (root or child) binds, read once per logger: parsing its bindings on every line would cost more than the line. */
const bound = new WeakMap<object, ReadonlySet<string>>();

function boundKeys(logger: pino.Logger): ReadonlySet<string> {
  let keys = bound.get(logger);
  if (keys === undefined) {
    keys = new Set(Object.keys(logger.bindings()));
    bound.set(logger, keys);
  }
  return keys;
}
