import { useQuery } from "@connectrpc/connect-query";
import { useEffect, useState } from "react";
import { Link } from "wouter";
import { clients } from "../clients";
import { ago, absTime, componentHealth, enumName, shortSha, sourceLabel, tsSeconds } from "../format";
import { ComponentStatus } from "../gen/v9/component/v1/component_pb";
import { StatsService } from "../gen/v9/stats/v1/stats_pb";
import type { Component } from "../gen/v9/state/v1/state_pb";
import { DesiredState, Runtime } from "../gen/v9/state/v1/state_pb";
import { useNow, useStream } from "../live";
import { Badge } from "../ui/Badge";
import { Empty, ErrorNotice, Loading } from "../ui/Notice";
import { Pager } from "../ui/Pager";
import { Sparkline } from "../ui/Sparkline";
import { applyWatch } from "../watchlist";
import { TableHead } from "../ui/TableHead";
import { Page } from "../ui/Section";

const pageSize = 50;

export function ComponentsPage() {
  const [filter, setFilter] = useState("");
  const [page, setPage] = useState(0);
  const query = useDebounced(filter.trim().toLowerCase(), 200);
  // The server pages and filters, and streams the page: whole once, then only the rows that
  // change, enter or leave it (1,000 components stay responsive; a change costs a row).
  const live = useStream(
    (signal) => clients.components.watch({ limit: pageSize, offset: page * pageSize, filter: query }, { signal }),
    applyWatch,
    [page, query],
  );
  const now = useNow();
  const total = live.data?.total ?? 0;
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const shown = live.data?.components ?? [];
  // A page that emptied (components deleted) goes back to the last one.
  useEffect(() => {
    if (live.data && page > 0 && page >= pages) setPage(pages - 1);
  }, [live.data, page, pages]);

  return (
    <Page
      id="components-h"
      title="Components"
      extra={
        (live.data || filter) && (
          <input
            type="search"
            className="input"
            placeholder="Filter by name or repository"
            aria-label="Filter components by name or repository"
            value={filter}
            onChange={(e) => {
              setFilter(e.target.value);
              setPage(0);
            }}
          />
        )
      }
    >
      {live.error !== undefined && <ErrorNotice error={live.error} retrying={live.retrying} />}
      {!live.data && live.error === undefined && <Loading what="components" />}
      {live.data && total === 0 && !query && (
        <Empty title="No components yet">
          <p>
            <Link href="/start" className="btn btn-primary">
              Start from a GitHub repository
            </Link>
          </p>
          <p>
            Or deploy one from a directory holding a <code>v9.toml</code>: <code>v9 deploy ./examples/hello-wasm</code>, or link a
            GitHub repository with <code>v9 component create NAME --repo owner/repo</code>.
          </p>
        </Empty>
      )}
      {live.data && total === 0 && query && <Empty title={`No component matches “${filter}”`} />}
      {shown.length > 0 && (
        <div className="table-wrap">
          <table className="table components-table">
            <TableHead columns={["Name", "Status", "Replicas", { label: "Source", hideNarrow: true }, { label: "Active deployment", hideNarrow: true }, "Hits, last hour"]} />
            <tbody>
              {shown.map((c) => (
                <Row key={c.id} c={c} s={live.data!.statuses[c.name]} now={now} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager page={Math.min(page, pages - 1)} pages={pages} onPage={setPage} label="Components pages" />
      {total > 0 && (
        <p className="sub list-count">
          {total} component{total === 1 ? "" : "s"}
          {query ? ` matching “${query}”` : ""}
        </p>
      )}
    </Page>
  );
}

function Row({ c, s, now }: { c: Component; s?: ComponentStatus; now: number }) {
  const paused = c.desired === DesiredState.PAUSED;
  const h = componentHealth(paused, s?.running ?? 0, s?.wanted ?? 0, s?.failed ?? 0, !!c.activeDeploymentId);
  const d = s?.activeDeployment;
  const created = tsSeconds(d?.createTime);
  return (
    <tr data-component={c.name}>
      <th scope="row">
        <Link href={`/components/${encodeURIComponent(c.name)}`} className="name-link">
          {c.name}
        </Link>
        <div className="sub">{enumName(Runtime, c.runtime, "RUNTIME_")}</div>
      </th>
      <td>
        <Badge tone={h.tone}>{h.label}</Badge>
      </td>
      <td className="num" aria-label={`${s?.running ?? 0} of ${s?.wanted ?? 0} replicas running`}>
        {s?.running ?? 0}/{s?.wanted ?? 0}
      </td>
      <td className="hide-narrow">{sourceLabel(c.source)}</td>
      <td className="hide-narrow">
        {d ? (
          <>
            <code>{shortSha(d.commitSha) || d.id.slice(0, 8)}</code> <span className="msg">{firstLine(d.commitMessage)}</span>
            <div className="sub" title={absTime(created)}>
              {d.author ? `${d.author}, ` : ""}
              {ago(created, now)}
            </div>
          </>
        ) : (
          <span className="sub">none</span>
        )}
      </td>
      <td>
        <Hits name={c.name} />
      </td>
    </tr>
  );
}

function Hits({ name }: { name: string }) {
  const q = useQuery(StatsService.method.series, { component: name, minutes: 60 }, { refetchInterval: 10_000, staleTime: 5_000 });
  if (q.isError) return <span className="sub">unavailable</span>;
  if (!q.data) return <span className="sub">…</span>;
  const values = q.data.buckets.map((b) => Number(b.requests));
  const total = values.reduce((a, b) => a + b, 0);
  return (
    <span className="hits">
      <Sparkline values={values} label={`${total} requests to ${name} in the last hour`} />
      <span className="sub num">{total}</span>
    </span>
  );
}

export function firstLine(s: string): string {
  const l = s.split("\n", 1)[0];
  return l.length > 60 ? `${l.slice(0, 59)}…` : l;
}

/** value, once it has stopped changing for ms. */
function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}
