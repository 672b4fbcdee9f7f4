import { describe, expect, it } from "vitest";
import { mergeLines } from "./logs";

const l = (nodeId: string, seq: number, ms: number) => ({
  nodeId,
  seq: BigInt(seq),
  time: { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 },
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
});
