import { Code, ConnectError } from "@connectrpc/connect";
import { useEffect, useMemo, useRef, useState } from "react";
import { clients } from "../clients";
import { explain } from "../errors";
import { tsSeconds } from "../format";
import type { LogLine } from "../gen/v9/logs/v1/logs_pb";
import { onApiError, sleep } from "../live";
import { mergeLines } from "../logs";
import { Card } from "./Section";

const keep = 2000;

type Conn = { state: "connecting" | "live" | "retrying" | "stopped"; note?: string };

/**
 * Live logs of a component from every node over LogService.Tail (server streaming). A stream
 * that drops reconnects with backoff and says so; lines already shown are not repeated.
 * Pausing keeps the stream and counts what arrives until the user resumes.
 */
export function Logs({ component, title = "Logs", only }: { component: string; title?: string; only?: string[] }) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [conn, setConn] = useState<Conn>({ state: "connecting" });
  const [paused, setPaused] = useState(false);
  const [pendingCount, setPendingCount] = useState(0);
  const [stream, setStream] = useState("");
  const [node, setNode] = useState("");
  const pausedRef = useRef(false);
  const pending = useRef<LogLine[]>([]);
  const box = useRef<HTMLOListElement>(null);
  pausedRef.current = paused;

  useEffect(() => {
    const ctl = new AbortController();
    setLines([]);
    pending.current = [];
    (async () => {
      let failures = 0;
      let connectedBefore = false;
      while (!ctl.signal.aborted) {
        setConn({ state: connectedBefore ? "retrying" : "connecting", note: connectedBefore ? "Reconnecting…" : undefined });
        try {
          const res = clients.logs.tail({ component, lines: 200, follow: true }, { signal: ctl.signal });
          for await (const raw of res) {
            const msg = only ? { lines: raw.lines.filter((l) => only.includes(l.stream)) } : raw;
            if (failures > 0 || !connectedBefore) {
              setConn({ state: "live", note: connectedBefore ? "Reconnected; lines missed while disconnected are shown if nodes still hold them." : undefined });
            }
            failures = 0;
            connectedBefore = true;
            if (msg.lines.length === 0) continue; // keepalive, or no line of the streams shown
            if (pausedRef.current) {
              pending.current = mergeLines(pending.current, msg.lines, keep);
              setPendingCount(pending.current.length);
            } else {
              setLines((old) => mergeLines(old, msg.lines, keep));
            }
          }
          if (ctl.signal.aborted) return;
          failures++;
          setConn({ state: "retrying", note: "The log stream ended; reconnecting…" });
        } catch (err) {
          if (ctl.signal.aborted) return;
          onApiError(err);
          if (err instanceof ConnectError && [Code.Unauthenticated, Code.PermissionDenied, Code.NotFound].includes(err.code)) {
            setConn({ state: "stopped", note: `${explain(err).title}: ${explain(err).detail}` });
            return;
          }
          failures++;
          setConn({ state: "retrying", note: `Log stream lost (${explain(err).detail}); reconnecting…` });
        }
        await sleep(Math.min(500 * 2 ** Math.max(failures - 1, 0), 8000), ctl.signal);
      }
    })();
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [component, only?.join()]);

  const resume = () => {
    setLines((old) => mergeLines(old, pending.current, keep));
    pending.current = [];
    setPendingCount(0);
    setPaused(false);
  };

  const nodes = useMemo(() => [...new Set(lines.map((l) => l.nodeId))].sort(), [lines]);
  const streams = useMemo(() => [...new Set(lines.map((l) => l.stream))].sort(), [lines]);
  const shown = lines.filter((l) => (!stream || l.stream === stream) && (!node || l.nodeId === node));

  useEffect(() => {
    if (!paused && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [shown.length, paused]);

  return (
    <Card
      id={`logs-h-${title.toLowerCase().replace(/\W+/g, "-")}`}
      title={title}
      extra={
        <span className={`conn conn-${conn.state}`} role="status" aria-live="polite">
          {conn.state === "live" ? "● live" : conn.state === "connecting" ? "connecting…" : conn.state === "retrying" ? "reconnecting…" : "stopped"}
        </span>
      }
    >
      <div className="toolbar">
        <button type="button" className="btn btn-small" onClick={() => (paused ? resume() : setPaused(true))}>
          {paused ? `Follow logs (${pendingCount} new)` : "Pause logs"}
        </button>
        <Filter label="Stream" value={stream} options={streams} onChange={setStream} />
        <Filter label="Node" value={node} options={nodes} onChange={setNode} />
      </div>
      {conn.note && <p className="sub conn-note">{conn.note}</p>}
      <ol className="logs" ref={box} aria-label={`Log lines of ${component}`} tabIndex={0}>
        {shown.length === 0 && <li className="sub">{conn.state === "live" ? (only ? "Waiting for the first line…" : "No log lines yet. Send the component a request.") : "Waiting for the log stream…"}</li>}
        {shown.map((l) => (
          <li key={`${l.nodeId}/${l.seq}`} className={`log log-${l.stream}`}>
            <time className="log-time">{fmtTime(tsSeconds(l.time))}</time> <span className="log-node">{l.nodeId}</span>{" "}
            <span className="log-stream">{l.stream}</span> <span className="log-text">{l.text}</span>
          </li>
        ))}
      </ol>
    </Card>
  );
}

function fmtTime(s?: number): string {
  if (!s) return "";
  const d = new Date(s * 1000);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

// Filter picks one of options, or "all" ("").
function Filter({ label, value, options, onChange }: { label: string; value: string; options: string[]; onChange: (v: string) => void }) {
  return (
    <label>
      {label}{" "}
      <select className="input input-small" value={value} onChange={(e) => onChange(e.target.value)}>
        <option value="">all</option>
        {options.map((o) => (
          <option key={o}>{o}</option>
        ))}
      </select>
    </label>
  );
}
