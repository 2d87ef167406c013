/** What a subcommand is: its flags (which also make its --help) and what it runs. */
import type { Logger } from "@trainfleet/proto";
import { UsageError } from "./flags.js";
import type { FlagTable, FlagValue } from "./flags.js";

export interface CommandContext {
  values: Record<string, FlagValue>;
  logger: Logger;
  /** Aborted on SIGTERM or SIGINT. */
  signal: AbortSignal;
  env: Readonly<Record<string, string | undefined>>;
}

export interface Command {
  name: string;
  usage: string;
  summary: string;
  flags: FlagTable;
  /** A flag that may also be given as the first argument, without its name (`status URL`). */
  positional?: string;
  run(context: CommandContext): Promise<number>;
}

export function requireString(values: Record<string, FlagValue>, name: string): string {
  const value = values[name];
  if (typeof value !== "string" || value === "") throw new UsageError(`--${name} is required; see --help`);
  return value;
}

export function requireNumber(values: Record<string, FlagValue>, name: string): number {
  const value = values[name];
  if (typeof value !== "number") throw new UsageError(`--${name} is required; see --help`);
  return value;
}
