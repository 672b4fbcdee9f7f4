// Formatting of API values for people: ages, sizes, durations, commit ids and enum names.
// Pure functions (no clock of their own: callers pass "now"), covered by format.test.ts.

/** Seconds since the epoch of a protobuf Timestamp-like value, or undefined. */
export function tsSeconds(ts?: { seconds: bigint; nanos: number }): number | undefined {
  if (!ts) return undefined;
  return Number(ts.seconds) + ts.nanos / 1e9;
}

/**
 * "just now", "42s ago", "5m ago", "3h ago", "2d ago"; "—" when unknown. precise counts every
 * second ("0s ago", "3s ago"), for heartbeats.
 */
export function ago(seconds: number | undefined, nowMs: number, precise = false): string {
  if (seconds === undefined || seconds <= 0) return "—";
  const d = Math.max(0, nowMs / 1000 - seconds);
  if (d < 5 && !precise) return "just now";
  if (d < 60) return `${Math.floor(d)}s ago`;
  if (d < 3600) return `${Math.floor(d / 60)}m ago`;
  if (d < 86400) return `${Math.floor(d / 3600)}h ago`;
  return `${Math.floor(d / 86400)}d ago`;
}

/** An absolute time for a tooltip, in the user's locale. */
export function absTime(seconds: number | undefined): string {
  if (seconds === undefined || seconds <= 0) return "";
  return new Date(seconds * 1000).toLocaleString();
}

/** The first 7 characters of a commit id, as git shows it; "upload" ids stay whole. */
export function shortSha(sha: string): string {
  return /^[0-9a-f]{40}$/i.test(sha) ? sha.slice(0, 7) : sha;
}

const units = ["B", "KiB", "MiB", "GiB", "TiB"];

/** 134217728 → "128 MiB"; 0 → "—" (no limit set). */
export function bytes(n: bigint | number): string {
  let v = Number(n);
  if (!v) return "—";
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
}

/** 30000 → "30s", 1500 → "1.5s", 250 → "250ms", 0 → "—". */
export function millis(ms: number): string {
  if (!ms) return "—";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number.isInteger(s) ? s : s.toFixed(1)}s`;
  const m = s / 60;
  return `${Number.isInteger(m) ? m : m.toFixed(1)}m`;
}

/** A latency for graphs: "0.4 ms", "12 ms", "1.2 s". */
export function latency(ms: number): string {
  if (ms < 1) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** 1234 → "1.2k", 2500000 → "2.5M". */
export function count(n: number): string {
  if (n > 0 && n < 10 && !Number.isInteger(n)) return n.toFixed(1);
  if (n < 1000) return String(Math.round(n));
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)}M`;
}

/**
 * The lower-case name of an enum value, without its prefix: enumName(Runtime, 1, "RUNTIME_")
 * is "wasm" (protoc-gen-es already strips the prefix; a name that still has it loses it).
 * Unknown values give "unknown".
 */
export function enumName(e: Record<number, string>, v: number, prefix: string): string {
  const n = e[v];
  if (!n || n.endsWith("UNSPECIFIED")) return "unknown";
  return (n.startsWith(prefix) ? n.slice(prefix.length) : n).toLowerCase();
}

/** "owner/repo@branch" for a linked component, "upload" otherwise. */
export function sourceLabel(src?: { githubRepo: string; branch: string }): string {
  if (!src || !src.githubRepo) return "upload";
  return src.branch ? `${src.githubRepo}@${src.branch}` : src.githubRepo;
}

export type Tone = "ok" | "warn" | "bad" | "muted";

/** What a component's row says about it, from its desired state and its placements. */
export function componentHealth(
  paused: boolean,
  running: number,
  wanted: number,
  failed: number,
  hasDeployment: boolean,
): { label: string; tone: Tone } {
  if (paused) return { label: "paused", tone: "muted" };
  if (!hasDeployment) return { label: "no deployment", tone: "muted" };
  if (failed > 0 && running === 0) return { label: "failed", tone: "bad" };
  if (wanted === 0) return { label: "scaled to zero", tone: "ok" };
  if (running >= wanted) return { label: "running", tone: "ok" };
  if (running === 0) return { label: "starting", tone: "warn" };
  return { label: "degraded", tone: "warn" };
}
