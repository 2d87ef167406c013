/** Waiting on real state in the operator's tests: poll, and on timeout say what was seen. */
import type { Logger } from "@trainfleet/runtime";

/**
 * Polls `probe` until it returns something other than undefined or false. On timeout the error
 * names `what`, the probe's last error and what `context()` says (the operator's log, the pods).
 */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs: number,
  context: () => Promise<string> | string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? "" : ` (last error: ${String(last)})`}\n${await context()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A logger that keeps warn and error lines, so that a failing test can show them. */
export function recordingLogger(lines: string[]): Logger {
  const keep = (level: string) => (fields: object, message: string) => void lines.push(`${level} ${message} ${JSON.stringify(fields)}`);
  const logger: Logger = { debug() {}, info() {}, warn: keep("warn"), error: keep("error"), child: () => logger };
  return logger;
}
