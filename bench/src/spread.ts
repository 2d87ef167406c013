/** Summaries of samples over sittings: percentiles of one sitting, "median (min-max)" across sittings. */
import { median } from "./child.js";

/** The p-th percentile (0-100) by the nearest-rank method: a value that was measured, never interpolated. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** "median unit (min-max)" of per-sitting figures. */
export function spread(values: readonly number[], unit: string, digits = 1): string {
  const at = (v: number) => v.toFixed(digits);
  if (values.length === 1) return `${at(values[0]!)}${unit}`;
  return `${at(median([...values]))}${unit} (${at(Math.min(...values))}-${at(Math.max(...values))})`;
}
