/**
 * The only place a logger is created. JSON lines (pino) when stdout is a file or pipe, as
 * for the processes of a local fleet whose logs go to the job folder; pretty output when
 * stdout is a terminal.
 */
import { pino } from "pino";
import pretty from "pino-pretty";
import type { Logger } from "@trainfleet/proto";

export const logLevels = ["debug", "info", "warn", "error"] as const;

export function createLogger(level: string, base: Record<string, unknown>): Logger {
  const options = { level, base: { ...base, pid: process.pid } };
  return process.stdout.isTTY ? pino(options, pretty({ sync: true, ignore: "pid,hostname" })) : pino(options);
}
