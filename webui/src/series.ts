// The math behind sparklines and graphs: scales, SVG paths and per-bucket figures from the
// StatsService's buckets. Pure functions, covered by series.test.ts.

export interface Point {
  x: number;
  y: number;
}

/** The largest value, at least 1 so that an all-zero series draws a flat line at the bottom. */
export function niceMax(values: number[]): number {
  let m = 0;
  for (const v of values) if (Number.isFinite(v) && v > m) m = v;
  if (m <= 1) return 1;
  // Round up to 1, 2 or 5 times a power of ten, so that axis labels read well.
  const p = 10 ** Math.floor(Math.log10(m));
  for (const f of [1, 2, 5, 10]) if (m <= f * p) return f * p;
  return 10 * p;
}

/** Points of values spread over width, scaled so that max is at the top of height. */
export function points(values: number[], width: number, height: number, max = niceMax(values)): Point[] {
  const n = values.length;
  if (n === 0) return [];
  const dx = n === 1 ? 0 : width / (n - 1);
  return values.map((v, i) => {
    const c = Number.isFinite(v) ? Math.min(Math.max(v, 0), max) : 0;
    return { x: round(i * dx), y: round(height - (c / max) * height) };
  });
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

/** An SVG path through the points ("M0,10L5,3..."), or "" for none. */
export function linePath(pts: Point[]): string {
  return pts.map((p, i) => `${i === 0 ? "M" : "L"}${p.x},${p.y}`).join("");
}

/** The line path closed down to the baseline, for a filled area. */
export function areaPath(pts: Point[], height: number): string {
  if (pts.length === 0) return "";
  const first = pts[0];
  const last = pts[pts.length - 1];
  return `${linePath(pts)}L${last.x},${height}L${first.x},${height}Z`;
}

/**
 * Sums consecutive values into at most n buckets (the last may hold fewer), so that a day of
 * 10-second buckets fits a graph's width.
 */
export function downsample(values: number[], n: number): number[] {
  if (n <= 0) return [];
  if (values.length <= n) return values.slice();
  const size = Math.ceil(values.length / n);
  const out: number[] = [];
  for (let i = 0; i < values.length; i += size) {
    let s = 0;
    for (let j = i; j < Math.min(i + size, values.length); j++) s += values[j];
    out.push(s);
  }
  return out;
}

export interface BucketLike {
  startUnix: bigint;
  requests: bigint;
  status2xx: bigint;
  status3xx: bigint;
  status4xx: bigint;
  status5xx: bigint;
  latencySumMs: number;
  latencyMaxMs: number;
  latencyHistogram?: bigint[];
}

/** Figures of one bucket that the graphs draw. */
export interface BucketFigures {
  start: number;
  requests: number;
  ok: number; // 2xx and 3xx
  clientErrors: number; // 4xx
  serverErrors: number; // 5xx
  avgMs: number; // mean latency, 0 without requests
  maxMs: number;
  hist: number[]; // requests per latency bucket (SeriesResponse.latencyBoundsMs), [] without
}

export function figures(b: BucketLike): BucketFigures {
  const requests = Number(b.requests);
  return {
    start: Number(b.startUnix),
    requests,
    ok: Number(b.status2xx) + Number(b.status3xx),
    clientErrors: Number(b.status4xx),
    serverErrors: Number(b.status5xx),
    avgMs: requests > 0 ? b.latencySumMs / requests : 0,
    maxMs: b.latencyMaxMs,
    hist: (b.latencyHistogram ?? []).map(Number),
  };
}

/** Histograms of the same bounds added up ([] for none). */
export function mergeHist(hs: number[][]): number[] {
  const out: number[] = [];
  for (const h of hs) for (let i = 0; i < h.length; i++) out[i] = (out[i] ?? 0) + h[i];
  return out;
}

/**
 * The q-quantile (0 < q <= 1) of the latencies a histogram counts, in ms: linear within the
 * bucket it falls in (bounds are the buckets' upper bounds; one more bucket holds slower
 * ones), never above maxMs when maxMs > 0; 0 without counts. The server computes it the same
 * way (observe.Percentile).
 */
export function percentile(hist: number[], bounds: number[], q: number, maxMs: number): number {
  const total = hist.reduce((a, c) => a + c, 0);
  if (total === 0) return 0;
  const rank = q * total;
  let cum = 0;
  for (let i = 0; i < hist.length; i++) {
    const c = hist[i];
    if (c === 0) continue;
    if (cum + c >= rank) {
      const lo = i > 0 ? bounds[i - 1] : 0;
      const hi = i < bounds.length ? bounds[i] : maxMs;
      const v = lo + ((hi - lo) * Math.max(0, rank - cum)) / c;
      return maxMs > 0 ? Math.min(v, maxMs) : v;
    }
    cum += c;
  }
  return maxMs;
}

/** Totals over a window: requests, the share of 5xx, and the mean latency. */
export function totals(fs: BucketFigures[]): { requests: number; errorRate: number; avgMs: number } {
  let requests = 0;
  let errors = 0;
  let latencySum = 0;
  for (const f of fs) {
    requests += f.requests;
    errors += f.serverErrors;
    latencySum += f.avgMs * f.requests;
  }
  return {
    requests,
    errorRate: requests > 0 ? errors / requests : 0,
    avgMs: requests > 0 ? latencySum / requests : 0,
  };
}

/**
 * Merges consecutive buckets into at most n: counts add up, the mean latency is weighted by
 * requests, the maximum is the largest; each merged bucket starts where its first did.
 */
export function regroup(fs: BucketFigures[], n: number): BucketFigures[] {
  if (n <= 0) return [];
  if (fs.length <= n) return fs;
  const size = Math.ceil(fs.length / n);
  const out: BucketFigures[] = [];
  for (let i = 0; i < fs.length; i += size) {
    const g = fs.slice(i, i + size);
    const t = totals(g);
    out.push({
      start: g[0].start,
      requests: t.requests,
      ok: g.reduce((a, f) => a + f.ok, 0),
      clientErrors: g.reduce((a, f) => a + f.clientErrors, 0),
      serverErrors: g.reduce((a, f) => a + f.serverErrors, 0),
      avgMs: t.avgMs,
      maxMs: Math.max(...g.map((f) => f.maxMs)),
      hist: mergeHist(g.map((f) => f.hist)),
    });
  }
  return out;
}
