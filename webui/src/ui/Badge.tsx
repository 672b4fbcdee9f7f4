import type { Tone } from "../format";

/** A status word with a colour; the word carries the meaning, the colour only repeats it. */
export function Badge({ tone, children }: { tone: Tone; children: React.ReactNode }) {
  return (
    <span className={`badge badge-${tone}`}>
      <span className="dot" aria-hidden="true" />
      {children}
    </span>
  );
}
