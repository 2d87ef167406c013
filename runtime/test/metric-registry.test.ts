import { describe, expect, it } from "vitest";
import { escapeHelp, escapeLabelValue, formatValue } from "../src/metrics/exposition.js";
import { MetricRegistry } from "../src/metrics/metric-registry.js";

describe("MetricRegistry", () => {
  it("renders counters, gauges and histograms in the text exposition format 0.0.4", () => {
    const registry = new MetricRegistry();
    const steps = registry.counter({ name: "demo_steps_total", help: "Steps done.", labelNames: ["job_id"] });
    registry.gauge({
      name: "demo_level",
      help: "A level\nread at scrape time.",
      labelNames: ["job_id"],
      collect: () => [{ labels: { job_id: "a" }, value: 0.5 }],
    });
    const seconds = registry.histogram({ name: "demo_step_seconds", help: "Step time.", labelNames: ["job_id"], buckets: [0.1, 1] });
    steps.inc({ job_id: "a" });
    steps.inc({ job_id: "a" }, 2);
    steps.inc({ job_id: 'b"\\\n' }, 0);
    for (const value of [0.05, 0.1, 0.5, 7]) seconds.observe({ job_id: "a" }, value);
    expect(registry.render()).toBe(
      [
        "# HELP demo_steps_total Steps done.",
        "# TYPE demo_steps_total counter",
        'demo_steps_total{job_id="a"} 3',
        'demo_steps_total{job_id="b\\"\\\\\\n"} 0',
        "# HELP demo_level A level\\nread at scrape time.",
        "# TYPE demo_level gauge",
        'demo_level{job_id="a"} 0.5',
        "# HELP demo_step_seconds Step time.",
        "# TYPE demo_step_seconds histogram",
        'demo_step_seconds_bucket{job_id="a",le="0.1"} 2',
        'demo_step_seconds_bucket{job_id="a",le="1"} 3',
        'demo_step_seconds_bucket{job_id="a",le="+Inf"} 4',
        'demo_step_seconds_sum{job_id="a"} 7.65',
        'demo_step_seconds_count{job_id="a"} 4',
        "",
      ].join("\n"),
    );
  });

  it("renders a metric without labels, and one whose collect has no samples yet as HELP and TYPE only", () => {
    const registry = new MetricRegistry();
    registry.gauge({ name: "demo_up", help: "Up.", collect: () => [{ labels: {}, value: 1 }] });
    registry.gauge({ name: "demo_age_seconds", help: "Age.", labelNames: ["job_id"], collect: () => [] });
    expect(registry.render()).toBe(
      "# HELP demo_up Up.\n# TYPE demo_up gauge\ndemo_up 1\n# HELP demo_age_seconds Age.\n# TYPE demo_age_seconds gauge\n",
    );
  });

  it("refuses what Prometheus would reject or promtool would flag", () => {
    const registry = new MetricRegistry();
    expect(() => registry.counter({ name: "demo_steps", help: "x" })).toThrow("counter names end in _total");
    expect(() => registry.gauge({ name: "9lives", help: "x" })).toThrow('bad metric name "9lives"');
    expect(() => registry.gauge({ name: "demo_x", help: "x", labelNames: ["__reserved"] })).toThrow('bad label name "__reserved"');
    expect(() => registry.histogram({ name: "demo_h", help: "x", labelNames: ["le"], buckets: [1] })).toThrow('"le" is reserved');
    expect(() => registry.histogram({ name: "demo_h", help: "x", buckets: [1, 1] })).toThrow("strictly increasing");
    registry.gauge({ name: "demo_x", help: "x" });
    expect(() => registry.gauge({ name: "demo_x", help: "x" })).toThrow("already registered");
    const counter = registry.counter({ name: "demo_c_total", help: "x", labelNames: ["a"] });
    expect(() => counter.inc({ a: "1" }, -1)).toThrow("cannot go down");
    expect(() => counter.inc({ b: "1" } as never)).toThrow("do not match its label names {a}");
    const collected = registry.counter({ name: "demo_d_total", help: "x", collect: () => [] });
    expect(() => collected.inc({})).toThrow("read at scrape time");
  });

  it("escapes and formats values as the format says", () => {
    expect(escapeHelp('a\\b\nc"')).toBe('a\\\\b\\nc"');
    expect(escapeLabelValue('a\\b\nc"')).toBe('a\\\\b\\nc\\"');
    expect([Number.NaN, Infinity, -Infinity, 0, 1e21, 2.5e-7, -3].map(formatValue)).toEqual([
      "NaN",
      "+Inf",
      "-Inf",
      "0",
      "1e+21",
      "2.5e-7",
      "-3",
    ]);
  });
});
