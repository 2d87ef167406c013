/**
 * The lines of the Prometheus text exposition format 0.0.4: HELP and TYPE, and one
 * sample per line. Escaping follows the format's rules: in HELP text a backslash and a
 * line feed; in label values also the double quote. Values are Go-style floats
 * (`+Inf`, `-Inf`, `NaN`; JavaScript's shortest round-trip form otherwise, which Go's
 * ParseFloat reads back exactly).
 */

export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

export function metricHeader(name: string, help: string, kind: string): string[] {
  return [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${kind}`];
}

/** `name{a="x",b="y"} value`, or `name value` without labels. */
export function formatSample(name: string, labelNames: readonly string[], labelValues: readonly string[], value: number): string {
  const labels = labelNames.map((label, i) => `${label}="${escapeLabelValue(labelValues[i] ?? "")}"`).join(",");
  return `${name}${labels === "" ? "" : `{${labels}}`} ${formatValue(value)}`;
}
