/**
 * Flags and environment variables, parsed and validated once per command. Each flag may
 * name an environment variable that supplies it when the flag is absent; `--help` is
 * generated from the same table, so the documentation cannot drift from the parser.
 */
import { Code, TrainfleetError } from "@trainfleet/proto";

export type FlagKind = "string" | "integer" | "number" | "boolean" | "list";

export interface FlagSpec {
  kind: FlagKind;
  help: string;
  env?: string;
  default?: string;
  /** Accepted values, for string flags. */
  choices?: readonly string[];
  /** Smallest accepted value, for integer flags (default 0). */
  min?: number;
  /** A one-letter alias, as kubectl's `-n` (given as `-n VALUE`). */
  short?: string;
}

export type FlagTable = Record<string, FlagSpec>;

export type FlagValue = string | number | boolean | number[] | undefined;

export class UsageError extends TrainfleetError {
  constructor(message: string) {
    super(Code.INVALID_ARGUMENT, message);
  }
}

export function parseFlags(
  table: FlagTable,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Record<string, FlagValue> {
  const raw = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const given = argv[i]!;
    const long = /^-[A-Za-z]$/.test(given) ? Object.entries(table).find(([, spec]) => spec.short === given.slice(1))?.[0] : undefined;
    if (/^-[A-Za-z]$/.test(given) && long === undefined) throw new UsageError(`unknown flag ${given}; see --help`);
    const arg = long === undefined ? given : `--${long}`;
    if (!arg.startsWith("--")) throw new UsageError(`unexpected argument "${arg}"; flags start with --`);
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = table[name];
    if (spec === undefined) throw new UsageError(`unknown flag --${name}; see --help`);
    if (eq >= 0) raw.set(name, arg.slice(eq + 1));
    else if (spec.kind === "boolean") raw.set(name, "true");
    else {
      const value = argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      raw.set(name, value);
    }
  }
  const values: Record<string, FlagValue> = {};
  for (const [name, spec] of Object.entries(table)) {
    const fromEnv = spec.env === undefined ? undefined : env[spec.env];
    const text = raw.get(name) ?? (fromEnv === "" ? undefined : fromEnv) ?? spec.default;
    const source = raw.has(name) ? `--${name}` : fromEnv ? `${spec.env} (for --${name})` : `--${name}`;
    values[name] = text === undefined ? undefined : convert(spec, text, source);
  }
  return values;
}

function convert(spec: FlagSpec, text: string, source: string): FlagValue {
  switch (spec.kind) {
    case "string":
      if (spec.choices !== undefined && !spec.choices.includes(text))
        throw new UsageError(`${source}: "${text}" is not one of ${spec.choices.join(", ")}`);
      return text;
    case "integer": {
      const value = Number(text);
      const min = spec.min ?? 0;
      if (!Number.isSafeInteger(value) || value < min)
        throw new UsageError(`${source}: expected an integer of at least ${min}, got "${text}"`);
      return value;
    }
    case "number": {
      const value = Number(text);
      if (!Number.isFinite(value) || text.trim() === "") throw new UsageError(`${source}: expected a number, got "${text}"`);
      return value;
    }
    case "boolean":
      if (!["true", "false", "1", "0"].includes(text)) throw new UsageError(`${source}: expected true or false, got "${text}"`);
      return text === "true" || text === "1";
    case "list": {
      if (text.trim() === "") return [];
      const values = text.split(",").map(Number);
      if (values.some((v) => !Number.isSafeInteger(v) || v < 0))
        throw new UsageError(`${source}: expected comma-separated non-negative integers, got "${text}"`);
      return values;
    }
  }
}

export function helpText(usage: string, summary: string, table: FlagTable): string {
  const rows = Object.entries(table).map(([name, spec]) => {
    const left = `  ${spec.short === undefined ? "" : `-${spec.short}, `}--${name}${spec.kind === "boolean" ? "" : ` <${spec.choices?.join("|") ?? spec.kind}>`}`;
    const notes = [
      spec.default === undefined ? undefined : `default ${spec.default}`,
      spec.env === undefined ? undefined : `env ${spec.env}`,
    ]
      .filter(Boolean)
      .join("; ");
    return `${left}\n      ${spec.help}${notes ? ` (${notes})` : ""}`;
  });
  return `${usage}\n\n${summary}\n\nFlags:\n${rows.join("\n")}\n  --help\n      Show this help.\n`;
}
