// A page of components kept current by ComponentService.Watch: the stream sends the page whole
// once, then only the rows that changed, entered or left it; applyWatch folds each message into
// what the page holds.
import type { ComponentStatus, ListRow, WatchResponse } from "./gen/v9/component/v1/component_pb";
import type { Component } from "./gen/v9/state/v1/state_pb";

export interface WatchedPage {
  index: bigint;
  total: number;
  components: Component[]; // sorted by name, as List sends them
  statuses: Record<string, ComponentStatus>; // by component name
}

/** The page after msg. A full message replaces the page; a change keeps the rows it names not. */
export function applyWatch(page: WatchedPage | undefined, msg: Pick<WatchResponse, "index" | "total" | "full" | "rows" | "removed">): WatchedPage {
  const rows = new Map<string, ListRow>();
  if (page && !msg.full) {
    for (const c of page.components) rows.set(c.name, { component: c, status: page.statuses[c.name] } as ListRow);
  }
  for (const name of msg.removed) rows.delete(name);
  for (const r of msg.rows) if (r.component) rows.set(r.component.name, r);
  const names = [...rows.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const components: Component[] = [];
  const statuses: Record<string, ComponentStatus> = {};
  for (const n of names) {
    const r = rows.get(n)!;
    components.push(r.component!);
    if (r.status) statuses[n] = r.status;
  }
  return { index: msg.index, total: msg.total, components, statuses };
}
