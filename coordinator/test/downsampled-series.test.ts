import { describe, expect, it } from "vitest";
import { DownsampledSeries } from "../src/status/downsampled-series.js";

describe("DownsampledSeries", () => {
  it("keeps one point per step until it is full", () => {
    const series = new DownsampledSeries(4);
    series.add(1, 10);
    series.add(2, 20);
    series.add(3, 30);
    expect(series.points()).toEqual([
      { step: 1, value: 10, steps: 1 },
      { step: 2, value: 20, steps: 1 },
      { step: 3, value: 30, steps: 1 },
    ]);
  });

  it("merges neighbours pairwise when full, then fills points of twice the steps; the newest may be partial", () => {
    const series = new DownsampledSeries(4);
    for (let step = 1; step <= 4; step++) series.add(step, step * 10);
    expect(series.points()).toEqual([
      { step: 2, value: 15, steps: 2 },
      { step: 4, value: 35, steps: 2 },
    ]);
    series.add(5, 50);
    expect(series.points()).toEqual([
      { step: 2, value: 15, steps: 2 },
      { step: 4, value: 35, steps: 2 },
      { step: 5, value: 50, steps: 1 },
    ]);
    for (let step = 6; step <= 8; step++) series.add(step, step * 10);
    // 8 steps in 4 points of 2 made it full again: now 2 points of 4 steps each.
    expect(series.points()).toEqual([
      { step: 4, value: 25, steps: 4 },
      { step: 8, value: 65, steps: 4 },
    ]);
  });

  it("never holds more than its capacity, covers every step, and each point is the mean of its steps", () => {
    const series = new DownsampledSeries(200);
    for (let step = 1; step <= 10_000; step++) {
      series.add(step, step);
      const points = series.points();
      expect(points.length).toBeLessThanOrEqual(200);
    }
    const points = series.points();
    expect(points.reduce((sum, p) => sum + p.steps, 0)).toBe(10_000);
    expect(points[points.length - 1]!.step).toBe(10_000);
    let first = 1;
    for (const p of points) {
      expect(p.value).toBeCloseTo((first + p.step) / 2, 9);
      first = p.step + 1;
    }
  });

  it("refuses an odd or tiny capacity", () => {
    expect(() => new DownsampledSeries(3)).toThrow("even integer");
    expect(() => new DownsampledSeries(0)).toThrow("even integer");
  });
});
