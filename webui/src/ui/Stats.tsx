import { useQuery } from "@connectrpc/connect-query";
import { useState } from "react";
import { count, latency } from "../format";
import { StatsService } from "../gen/v9/stats/v1/stats_pb";
import { figures, mergeHist, percentile, regroup, totals } from "../series";
import { BarChart } from "./Chart";
import { ErrorNotice, Loading } from "./Notice";
import { Card } from "./Section";

const windows = [
  { minutes: 60, label: "1 hour", bars: 120, refetch: 5_000 },
  { minutes: 1440, label: "24 hours", bars: 144, refetch: 30_000 },
];

/**
 * Hits, status classes and latency percentiles of a component from every node, over 1 h
 * (10 s buckets) or 24 h (1 min buckets), from each node's on-disk rollups.
 */
export function Stats({ component }: { component: string }) {
  const [w, setW] = useState(0);
  const win = windows[w];
  const q = useQuery(StatsService.method.series, { component, minutes: win.minutes }, { refetchInterval: win.refetch });
  const fs = regroup((q.data?.buckets ?? []).map(figures), win.bars);
  const t = totals(fs);
  const bounds = q.data?.latencyBoundsMs ?? [];
  const p = (f: { hist: number[]; maxMs: number }, x: number) => percentile(f.hist, bounds, x, f.maxMs);
  const all = { hist: mergeHist(fs.map((f) => f.hist)), maxMs: Math.max(0, ...fs.map((f) => f.maxMs)) };
  return (
    <Card
      id="stats-h"
      title="Traffic"
      extra={
        <div role="group" aria-label="Time window" className="seg">
          {windows.map((x, i) => (
            <button key={x.minutes} type="button" className="btn btn-small" aria-pressed={i === w} onClick={() => setW(i)}>
              {x.label}
            </button>
          ))}
        </div>
      }
    >
      {q.error && <ErrorNotice error={q.error} />}
      {!q.data && !q.error && <Loading what="traffic" />}
      {q.data && (
        <>
          <p className="summary">
            <strong>{count(t.requests)}</strong> requests in the last {win.label}, <strong>{(t.errorRate * 100).toFixed(1)}%</strong> server
            errors, latency p50 <strong>{latency(p(all, 0.5))}</strong> p99 <strong>{latency(p(all, 0.99))}</strong>
            <span className="sub"> · from {q.data.nodes.length} node{q.data.nodes.length === 1 ? "" : "s"}</span>
          </p>
          <div className="charts">
            <BarChart
              title="Requests by status"
              starts={fs.map((f) => f.start)}
              format={count}
              series={[
                { name: "2xx/3xx", values: fs.map((f) => f.ok), className: "c-ok" },
                { name: "4xx", values: fs.map((f) => f.clientErrors), className: "c-warn" },
                { name: "5xx", values: fs.map((f) => f.serverErrors), className: "c-bad" },
              ]}
            />
            <BarChart
              title="Latency (p50 and p99)"
              starts={fs.map((f) => f.start)}
              format={latency}
              stacked={false}
              series={[
                { name: "p99", values: fs.map((f) => p(f, 0.99)), className: "c-muted" },
                { name: "p50", values: fs.map((f) => p(f, 0.5)), className: "c-accent" },
              ]}
            />
          </div>
        </>
      )}
    </Card>
  );
}
