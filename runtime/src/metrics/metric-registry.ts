/**
 * A small Prometheus metric registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format 0.0.4 (HELP and TYPE lines, escaped label
 * values, `_bucket{le=...}` / `_sum` / `_count` for histograms). The coordinator and the
 * parameter-server shards each hold one and serve it at /metrics.
 *
 * A counter or gauge is either updated as things happen (`inc`, `set`) or read at scrape
 * time from state the process already keeps (`collect`): a shard's byte counters, for
 * example, are read from the shard instead of being counted twice.
 */
import { formatSample, formatValue, metricHeader } from "./exposition.js";

export type Labels<L extends string> = Readonly<Record<L, string>>;

export interface Sample<L extends string> {
  labels: Labels<L>;
  value: number;
}

export interface MetricOptions<L extends string> {
  /** snake_case with a unit suffix; counters end in `_total` (promtool checks both). */
  name: string;
  help: string;
  labelNames?: readonly L[];
}

export interface CollectedMetricOptions<L extends string> extends MetricOptions<L> {
  /** Read at every scrape; a metric with `collect` takes no `inc` or `set`. */
  collect?: () => Iterable<Sample<L>>;
}

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds, strictly increasing; `+Inf` is added. */
  buckets: readonly number[];
}

type Kind = "counter" | "gauge" | "histogram";

interface Family {
  readonly name: string;
  readonly help: string;
  readonly kind: Kind;
  render(): string[];
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Label values in `labelNames` order, checked to be exactly those names. */
function labelValues<L extends string>(family: string, labelNames: readonly L[], labels: Labels<L>): string[] {
  const given = Object.keys(labels);
  if (given.length !== labelNames.length || labelNames.some((name) => typeof labels[name] !== "string")) {
    throw new Error(`metric ${family}: labels {${given.join(", ")}} do not match its label names {${labelNames.join(", ")}}`);
  }
  return labelNames.map((name) => labels[name]);
}

class Series<L extends string, V> {
  readonly #values = new Map<string, { labels: string[]; value: V }>();

  constructor(
    readonly family: string,
    readonly labelNames: readonly L[],
  ) {}

  get(labels: Labels<L>, initial: () => V): { labels: string[]; value: V } {
    const values = labelValues(this.family, this.labelNames, labels);
    const key = JSON.stringify(values);
    let entry = this.#values.get(key);
    if (entry === undefined) {
      entry = { labels: values, value: initial() };
      this.#values.set(key, entry);
    }
    return entry;
  }

  entries(): Iterable<{ labels: string[]; value: V }> {
    return this.#values.values();
  }
}

/** A value that only goes up (a count, or a total of seconds or bytes). */
export class Counter<L extends string = never> implements Family {
  readonly kind = "counter";
  readonly #series: Series<L, { value: number }>;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
    private readonly collect?: () => Iterable<Sample<L>>,
  ) {
    this.#series = new Series(name, labelNames);
  }

  inc(labels: Labels<L>, by = 1): void {
    if (this.collect !== undefined) throw new Error(`metric ${this.name} is read at scrape time; it cannot be incremented`);
    if (!(by >= 0)) throw new Error(`metric ${this.name}: a counter cannot go down (inc by ${by})`);
    this.#series.get(labels, () => ({ value: 0 })).value.value += by;
  }

  render(): string[] {
    return renderSimple(this.name, this.labelNames, this.#series, this.collect);
  }
}

/** A value that goes up and down (a level, a rate, an age). */
export class Gauge<L extends string = never> implements Family {
  readonly kind = "gauge";
  readonly #series: Series<L, { value: number }>;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
    private readonly collect?: () => Iterable<Sample<L>>,
  ) {
    this.#series = new Series(name, labelNames);
  }

  set(labels: Labels<L>, value: number): void {
    if (this.collect !== undefined) throw new Error(`metric ${this.name} is read at scrape time; it cannot be set`);
    this.#series.get(labels, () => ({ value: 0 })).value.value = value;
  }

  render(): string[] {
    return renderSimple(this.name, this.labelNames, this.#series, this.collect);
  }
}

/** Observations counted into cumulative buckets, with their sum and count. */
export class Histogram<L extends string = never> implements Family {
  readonly kind = "histogram";
  readonly #series: Series<L, { counts: number[]; sum: number; count: number }>;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
    readonly buckets: readonly number[],
  ) {
    if (buckets.length === 0 || buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))) {
      throw new Error(`metric ${name}: buckets must be finite and strictly increasing, got [${buckets.join(", ")}]`);
    }
    if ((labelNames as readonly string[]).includes("le")) throw new Error(`metric ${name}: "le" is reserved for histogram buckets`);
    this.#series = new Series(name, labelNames);
  }

  observe(labels: Labels<L>, value: number): void {
    const entry = this.#series.get(labels, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 })).value;
    // Counts per bucket (not cumulative); rendering adds them up.
    const index = this.buckets.findIndex((bound) => value <= bound);
    if (index >= 0) entry.counts[index]!++;
    entry.sum += value;
    entry.count++;
  }

  render(): string[] {
    const lines: string[] = [];
    for (const { labels, value } of this.#series.entries()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += value.counts[i]!;
        lines.push(formatSample(`${this.name}_bucket`, [...this.labelNames, "le"], [...labels, formatValue(bound)], cumulative));
      });
      lines.push(formatSample(`${this.name}_bucket`, [...this.labelNames, "le"], [...labels, "+Inf"], value.count));
      lines.push(formatSample(`${this.name}_sum`, this.labelNames, labels, value.sum));
      lines.push(formatSample(`${this.name}_count`, this.labelNames, labels, value.count));
    }
    return lines;
  }
}

function renderSimple<L extends string>(
  name: string,
  labelNames: readonly L[],
  series: Series<L, { value: number }>,
  collect: (() => Iterable<Sample<L>>) | undefined,
): string[] {
  if (collect === undefined) return [...series.entries()].map(({ labels, value }) => formatSample(name, labelNames, labels, value.value));
  return [...collect()].map(({ labels, value }) => formatSample(name, labelNames, labelValues(name, labelNames, labels), value));
}

export class MetricRegistry {
  readonly #families: Family[] = [];

  counter<L extends string = never>(options: CollectedMetricOptions<L>): Counter<L> {
    if (!options.name.endsWith("_total")) throw new Error(`metric ${options.name}: counter names end in _total`);
    return this.#add(new Counter(options.name, options.help, this.#labelNames(options), options.collect));
  }

  gauge<L extends string = never>(options: CollectedMetricOptions<L>): Gauge<L> {
    return this.#add(new Gauge(options.name, options.help, this.#labelNames(options), options.collect));
  }

  histogram<L extends string = never>(options: HistogramOptions<L>): Histogram<L> {
    return this.#add(new Histogram(options.name, options.help, this.#labelNames(options), options.buckets));
  }

  /** Every metric in the text exposition format 0.0.4, in the order they were added. */
  render(): string {
    const out: string[] = [];
    for (const family of this.#families) out.push(...metricHeader(family.name, family.help, family.kind), ...family.render());
    return out.length === 0 ? "" : `${out.join("\n")}\n`;
  }

  #labelNames<L extends string>(options: MetricOptions<L>): readonly L[] {
    const names = options.labelNames ?? [];
    for (const name of names) {
      if (!labelName.test(name) || name.startsWith("__")) throw new Error(`metric ${options.name}: bad label name "${name}"`);
    }
    if (new Set(names).size !== names.length) throw new Error(`metric ${options.name}: a label name appears twice`);
    return names;
  }

  #add<F extends Family>(family: F): F {
    if (!metricName.test(family.name)) throw new Error(`bad metric name "${family.name}"`);
    if (this.#families.some((f) => f.name === family.name)) throw new Error(`metric ${family.name} is already registered`);
    this.#families.push(family);
    return family;
  }
}

/** The content type of the text exposition format 0.0.4. */
export const metricsContentType = "text/plain; version=0.0.4; charset=utf-8";
