/** What a subcommand is: its flags (which also make its --help) and what it runs. */
import type { Logger } from "@trainfleet/runtime";
import type { FlagTable, FlagValue } from "./flags.js";
import { UsageError } from "./flags.js";

export interface CommandContext {
  values: Record<string, FlagValue>;
  logger: Logger;
  /** Aborted on SIGTERM or SIGINT. */
  signal: AbortSignal;
  /**
   * The command's work is done: a signal from now on only cuts what is left (a coordinator's
   * lingering), and the exit code stays the command's instead of 143.
   */
  workDone(): void;
  env: Readonly<Record<string, string | undefined>>;
}

export interface Command {
  name: string;
  usage: string;
  summary: string;
  flags: FlagTable;
  /** Flags that may also be given as the leading arguments, without their names, in this order (`scale NAME N`). */
  positionals?: readonly string[];
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

/**
 * The arguments with the leading bare ones named after the command's positionals
 * (`scale web 3` -> `--name web --replicas 3`); the rest go to the flag parser as they are.
 */
export function namePositionals(command: Pick<Command, "positionals">, args: readonly string[]): string[] {
  const names = command.positionals ?? [];
  let taken = 0;
  while (taken < names.length && taken < args.length && !args[taken]!.startsWith("-")) taken++;
  return [...args.slice(0, taken).flatMap((value, i) => [`--${names[i]!}`, value]), ...args.slice(taken)];
}
