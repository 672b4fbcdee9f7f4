import { describe, expect, it } from "vitest";
import { ago, bytes, componentHealth, count, enumName, latency, millis, shortSha, sourceLabel } from "./format";

describe("ago", () => {
  const now = 1_000_000_000_000;
  it("says how long ago", () => {
    expect(ago(now / 1000 - 2, now)).toBe("just now");
    expect(ago(now / 1000 - 42, now)).toBe("42s ago");
    expect(ago(now / 1000 - 300, now)).toBe("5m ago");
    expect(ago(now / 1000 - 3 * 3600, now)).toBe("3h ago");
    expect(ago(now / 1000 - 2 * 86400, now)).toBe("2d ago");
    expect(ago(now / 1000 - 3.4, now, true)).toBe("3s ago");
  });
  it("shows a dash for unknown times and never a negative age", () => {
    expect(ago(undefined, now)).toBe("—");
    expect(ago(0, now)).toBe("—");
    expect(ago(now / 1000 + 60, now)).toBe("just now");
  });
});

describe("sizes and durations", () => {
  it("formats bytes in binary units", () => {
    expect(bytes(134217728n)).toBe("128 MiB");
    expect(bytes(1536)).toBe("1.5 KiB");
    expect(bytes(0)).toBe("—");
  });
  it("formats milliseconds", () => {
    expect(millis(30000)).toBe("30s");
    expect(millis(1500)).toBe("1.5s");
    expect(millis(250)).toBe("250ms");
    expect(millis(120000)).toBe("2m");
    expect(millis(0)).toBe("—");
    expect(latency(0.42)).toBe("0.4 ms");
    expect(latency(12.4)).toBe("12 ms");
    expect(latency(1234)).toBe("1.2 s");
  });
  it("abbreviates counts", () => {
    expect(count(999)).toBe("999");
    expect(count(0.5)).toBe("0.5");
    expect(count(0)).toBe("0");
    expect(count(1234)).toBe("1.2k");
    expect(count(45678)).toBe("46k");
    expect(count(2_500_000)).toBe("2.5M");
  });
});

describe("names", () => {
  it("shortens commit ids but not other ids", () => {
    expect(shortSha("0123456789abcdef0123456789abcdef01234567")).toBe("0123456");
    expect(shortSha("upload-17")).toBe("upload-17");
  });
  it("strips enum prefixes", () => {
    const Runtime = { 0: "RUNTIME_UNSPECIFIED", 1: "RUNTIME_WASM", 2: "RUNTIME_CONTAINER" };
    expect(enumName(Runtime, 1, "RUNTIME_")).toBe("wasm");
    expect(enumName(Runtime, 0, "RUNTIME_")).toBe("unknown");
    expect(enumName(Runtime, 9, "RUNTIME_")).toBe("unknown");
    // protoc-gen-es strips the prefix itself.
    const Generated = { 0: "UNSPECIFIED", 1: "WASM", 2: "CONTAINER" };
    expect(enumName(Generated, 2, "RUNTIME_")).toBe("container");
    expect(enumName(Generated, 0, "RUNTIME_")).toBe("unknown");
  });
  it("labels sources", () => {
    expect(sourceLabel({ githubRepo: "acme/web", branch: "main" })).toBe("acme/web@main");
    expect(sourceLabel({ githubRepo: "", branch: "" })).toBe("upload");
    expect(sourceLabel(undefined)).toBe("upload");
  });
});

describe("componentHealth", () => {
  it("reads desired state and placements", () => {
    expect(componentHealth(true, 2, 0, 0, true)).toEqual({ label: "paused", tone: "muted" });
    expect(componentHealth(false, 0, 1, 0, false).label).toBe("no deployment");
    expect(componentHealth(false, 0, 2, 2, true)).toEqual({ label: "failed", tone: "bad" });
    expect(componentHealth(false, 2, 2, 0, true)).toEqual({ label: "running", tone: "ok" });
    expect(componentHealth(false, 1, 2, 1, true)).toEqual({ label: "degraded", tone: "warn" });
    expect(componentHealth(false, 0, 2, 0, true)).toEqual({ label: "starting", tone: "warn" });
    expect(componentHealth(false, 0, 0, 0, true).label).toBe("scaled to zero");
  });
});
