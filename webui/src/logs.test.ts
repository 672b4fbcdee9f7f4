import { describe, expect, it } from "vitest";
import { mergeLines } from "./logs";

const l = (nodeId: string, seq: number, ms: number, text = "") => ({
  nodeId,
  seq: BigInt(seq),
  time: { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 },
  text,
});

describe("mergeLines", () => {
  it("orders lines of several nodes by time", () => {
    const got = mergeLines([l("a", 1, 1000)], [l("b", 7, 500), l("a", 2, 1500)], 10);
    expect(got.map((x) => `${x.nodeId}${x.seq}`)).toEqual(["b7", "a1", "a2"]);
  });
  it("drops lines already held after a reconnect", () => {
    const old = [l("a", 1, 1000), l("a", 2, 2000)];
    const got = mergeLines(old, [l("a", 1, 1000), l("a", 2, 2000), l("a", 3, 3000)], 10);
    expect(got.map((x) => Number(x.seq))).toEqual([1, 2, 3]);
    expect(mergeLines(old, [l("a", 2, 2000)], 10)).toBe(old);
  });
  it("keeps only the newest lines", () => {
    const got = mergeLines([l("a", 1, 1), l("a", 2, 2)], [l("a", 3, 3)], 2);
    expect(got.map((x) => Number(x.seq))).toEqual([2, 3]);
  });
  // A node numbers its lines from 1 again when it restarts (logring.Ring.seq is in memory).
  it("keeps a restarted node's new lines whose numbers lines from before the restart had", () => {
    const before = [l("n2", 1, 1_000, "old one"), l("n2", 2, 2_000, "old two")];
    const after = [l("n2", 1, 600_000, "new one"), l("n2", 2, 601_000, "new two")];
    const got = mergeLines(before, after, 2000);
    expect(got.map((x) => x.text)).toEqual(["old one", "old two", "new one", "new two"]);
  });
});
