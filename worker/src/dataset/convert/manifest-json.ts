/**
 * A manifest as readable, stable JSON: nested structure indented, and each object or array of
 * plain values (a column, a block, a shape) on one line, so a manifest of thousands of
 * blocks stays a file a person can read and diff.
 */
export function manifestJson(value: unknown): string {
  return `${format(value, "")}\n`;
}

function format(value: unknown, indent: string): string {
  if (typeof value !== "object" || value === null) return JSON.stringify(value);
  const entries = Array.isArray(value)
    ? value.map((v) => [undefined, v] as const)
    : Object.entries(value).filter(([, v]) => v !== undefined);
  const flat = entries.every(([, v]) => typeof v !== "object" || v === null || (Array.isArray(v) && v.every((x) => typeof x !== "object")));
  if (flat) return JSON.stringify(value, null, 1).replace(/\n\s*/g, " ").replace(/\[ /g, "[").replace(/ \]/g, "]").replace(/\{ /g, "{ ");
  const inner = `${indent}  `;
  const lines = entries.map(([key, v]) => `${inner}${key === undefined ? "" : `${JSON.stringify(key)}: `}${format(v, inner)}`);
  return Array.isArray(value) ? `[\n${lines.join(",\n")}\n${indent}]` : `{\n${lines.join(",\n")}\n${indent}}`;
}
