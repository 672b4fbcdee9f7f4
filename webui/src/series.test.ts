import { describe, expect, it } from "vitest";
import { areaPath, downsample, figures, linePath, mergeHist, niceMax, percentile, points, regroup, totals } from "./series";

describe("niceMax", () => {
  it("rounds up to 1, 2 or 5 times a power of ten", () => {
    expect(niceMax([])).toBe(1);
    expect(niceMax([0, 0])).toBe(1);
    expect(niceMax([3])).toBe(5);
    expect(niceMax([7, 2])).toBe(10);
    expect(niceMax([120])).toBe(200);
    expect(niceMax([1000])).toBe(1000);
    expect(niceMax([NaN, 4])).toBe(5);
  });
});

describe("points and paths", () => {
  it("spreads values over the width with the maximum at the top", () => {
    expect(points([0, 5, 10], 100, 20)).toEqual([
      { x: 0, y: 20 },
      { x: 50, y: 10 },
      { x: 100, y: 0 },
    ]);
  });
  it("draws a flat line at the bottom for an idle component", () => {
    const p = points([0, 0, 0, 0], 30, 10);
    expect(p.every((q) => q.y === 10)).toBe(true);
    expect(linePath(p)).toBe("M0,10L10,10L20,10L30,10");
  });
  it("clamps values outside [0, max] and handles one point", () => {
    expect(points([-3, 50], 10, 10, 10)).toEqual([
      { x: 0, y: 10 },
      { x: 10, y: 0 },
    ]);
    expect(points([4], 10, 10)).toEqual([{ x: 0, y: 2 }]);
    expect(points([], 10, 10)).toEqual([]);
  });
  it("closes an area down to the baseline", () => {
    expect(areaPath(points([0, 10], 10, 10), 10)).toBe("M0,10L10,0L10,10L0,10Z");
    expect(areaPath([], 10)).toBe("");
  });
});

describe("downsample", () => {
  it("sums consecutive buckets", () => {
    expect(downsample([1, 2, 3, 4, 5, 6], 3)).toEqual([3, 7, 11]);
    expect(downsample([1, 2, 3, 4, 5], 2)).toEqual([6, 9]);
    expect(downsample([1, 2], 5)).toEqual([1, 2]);
    expect(downsample([1, 2], 0)).toEqual([]);
  });
  it("keeps the total", () => {
    const v = Array.from({ length: 8640 }, (_, i) => i % 7);
    const d = downsample(v, 300);
    expect(d.length).toBeLessThanOrEqual(300);
    expect(d.reduce((a, b) => a + b, 0)).toBe(v.reduce((a, b) => a + b, 0));
  });
});

describe("figures and totals", () => {
  const b = (requests: number, s5: number, latencySumMs: number) => ({
    startUnix: 100n,
    requests: BigInt(requests),
    status2xx: BigInt(requests - s5),
    status3xx: 0n,
    status4xx: 0n,
    status5xx: BigInt(s5),
    latencySumMs,
    latencyMaxMs: 9,
  });
  it("derives the mean latency and status classes", () => {
    expect(figures(b(4, 1, 20))).toMatchObject({ start: 100, requests: 4, ok: 3, serverErrors: 1, avgMs: 5, maxMs: 9 });
    expect(figures(b(0, 0, 0)).avgMs).toBe(0);
  });
  it("weights the mean latency by requests", () => {
    const t = totals([figures(b(1, 0, 10)), figures(b(3, 3, 6)), figures(b(0, 0, 0))]);
    expect(t.requests).toBe(4);
    expect(t.errorRate).toBe(0.75);
    expect(t.avgMs).toBe(4);
  });
});

describe("regroup", () => {
  const f = (start: number, requests: number, avgMs: number, maxMs: number) => ({
    start,
    requests,
    ok: requests,
    clientErrors: 0,
    serverErrors: 0,
    avgMs,
    maxMs,
    hist: requests > 0 ? [requests, 0] : [],
  });
  it("merges buckets, weighting the mean, keeping the max and adding histograms", () => {
    const got = regroup([f(0, 1, 10, 10), f(10, 3, 2, 5), f(20, 0, 0, 0), f(30, 2, 1, 1)], 2);
    expect(got).toEqual([
      { start: 0, requests: 4, ok: 4, clientErrors: 0, serverErrors: 0, avgMs: 4, maxMs: 10, hist: [4, 0] },
      { start: 20, requests: 2, ok: 2, clientErrors: 0, serverErrors: 0, avgMs: 1, maxMs: 1, hist: [2, 0] },
    ]);
  });
  it("leaves short series alone", () => {
    const s = [f(0, 1, 1, 1)];
    expect(regroup(s, 10)).toBe(s);
  });
});

describe("percentile", () => {
  const bounds = [1, 2, 5, 10];
  it("interpolates within the bucket the rank falls in", () => {
    // 50 requests ≤ 1 ms, 50 in (2, 5].
    const h = [50, 0, 50, 0, 0];
    expect(percentile(h, bounds, 0.5, 4)).toBe(1);
    expect(percentile(h, bounds, 0.6, 4)).toBeCloseTo(2.6);
    expect(percentile(h, bounds, 0.99, 4)).toBe(4); // capped at the max seen
  });
  it("uses the max for the overflow bucket and 0 for no requests", () => {
    expect(percentile([0, 0, 0, 0, 3], bounds, 0.99, 40)).toBeCloseTo(10 + 30 * (2.97 / 3));
    expect(percentile([], bounds, 0.5, 0)).toBe(0);
  });
  it("merges histograms of many nodes or buckets", () => {
    expect(mergeHist([[1, 2], [3, 4, 5], []])).toEqual([4, 6, 5]);
  });
});
