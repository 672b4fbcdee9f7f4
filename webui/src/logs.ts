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
 * Adds incoming lines to old ones: lines already held (same node and sequence number) are
 * dropped, the result is ordered by time (then node and sequence), and only the newest keep
 * lines remain.
 */
export function mergeLines<T extends Keyed>(old: T[], incoming: T[], keep: number): T[] {
  if (incoming.length === 0) return old;
  const seen = new Set(old.map((l) => `${l.nodeId}/${l.seq}`));
  const add = incoming.filter((l) => {
    const k = `${l.nodeId}/${l.seq}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  if (add.length === 0) return old;
  const all = old.concat(add);
  all.sort((a, b) => t(a) - t(b) || (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : Number(a.seq - b.seq)));
  return all.length > keep ? all.slice(all.length - keep) : all;
}
