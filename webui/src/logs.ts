// Merging log lines that arrive from several nodes and from reconnected streams.
/** What merging needs of a LogLine. */
interface Keyed {
  nodeId: string;
  seq: bigint;
  time?: { seconds: bigint; nanos: number };
}

function t(l: Keyed): number {
  return l.time ? Number(l.time.seconds) * 1e3 + l.time.nanos / 1e6 : 0;
}

/**
 * A line's identity: its node, sequence number and time. A node numbers its lines from 1
 * again when it restarts, so the number alone would take a restarted node's new lines for
 * ones already held; a line sent again (a reconnect) keeps its time.
 */
function key(l: Keyed): string {
  return `${l.nodeId}/${l.seq}/${l.time?.seconds ?? ""}.${l.time?.nanos ?? ""}`;
}

/**
 * Adds incoming lines to old ones: lines already held (same node, sequence number and time)
 * are dropped, the result is ordered by time (then node and sequence), and only the newest keep
 * lines remain.
 */
export function mergeLines<T extends Keyed>(old: T[], incoming: T[], keep: number): T[] {
  if (incoming.length === 0) return old;
  const seen = new Set(old.map(key));
  const add = incoming.filter((l) => {
    const k = key(l);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  if (add.length === 0) return old;
  const all = old.concat(add);
  all.sort((a, b) => t(a) - t(b) || (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : Number(a.seq - b.seq)));
  return all.length > keep ? all.slice(all.length - keep) : all;
}
