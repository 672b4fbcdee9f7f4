import { describe, expect, it } from "vitest";
import type { ComponentStatus, ListRow } from "./gen/v9/component/v1/component_pb";
import type { Component } from "./gen/v9/state/v1/state_pb";
import { applyWatch } from "./watchlist";

const row = (name: string, running = 1): ListRow =>
  ({ component: { name } as Component, status: { running, wanted: 1 } as ComponentStatus }) as ListRow;
const msg = (index: number, total: number, full: boolean, rows: ListRow[], removed: string[] = []) => ({ index: BigInt(index), total, full, rows, removed });
const names = (p: { components: Component[] }) => p.components.map((c) => c.name);

describe("applyWatch", () => {
  it("takes a full message as the page, sorted by name", () => {
    const p = applyWatch(undefined, msg(5, 3, true, [row("b"), row("a"), row("c")]));
    expect(names(p)).toEqual(["a", "b", "c"]);
    expect(p.total).toBe(3);
    expect(p.index).toBe(5n);
    expect(p.statuses.b.running).toBe(1);
  });
  it("replaces a changed row and keeps the others", () => {
    const p0 = applyWatch(undefined, msg(5, 3, true, [row("a"), row("b"), row("c")]));
    const p1 = applyWatch(p0, msg(6, 3, false, [row("b", 0)]));
    expect(names(p1)).toEqual(["a", "b", "c"]);
    expect(p1.statuses.b.running).toBe(0);
    expect(p1.statuses.a).toBe(p0.statuses.a);
    expect(p1.index).toBe(6n);
    expect(p0.statuses.b.running).toBe(1); // the old page is not changed
  });
  it("adds rows in name order and drops the removed ones", () => {
    const p0 = applyWatch(undefined, msg(5, 3, true, [row("b"), row("c"), row("d")]));
    const p1 = applyWatch(p0, msg(7, 4, false, [row("a")], ["d"]));
    expect(names(p1)).toEqual(["a", "b", "c"]);
    expect(p1.total).toBe(4);
    expect(p1.statuses.d).toBeUndefined();
  });
  it("starts over on a full message after a reconnect", () => {
    const p0 = applyWatch(undefined, msg(5, 2, true, [row("a"), row("b")]));
    const p1 = applyWatch(p0, msg(9, 1, true, [row("c")]));
    expect(names(p1)).toEqual(["c"]);
  });
  it("keeps the rows on a keepalive (no rows, nothing removed)", () => {
    const p0 = applyWatch(undefined, msg(5, 2, true, [row("a"), row("b")]));
    expect(names(applyWatch(p0, msg(8, 2, false, [])))).toEqual(["a", "b"]);
  });
});
