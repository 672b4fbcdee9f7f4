import { useId } from "react";
import { niceMax } from "../series";

export interface SeriesDef {
  name: string;
  values: number[];
  className: string; // colour, from styles.css
}

/**
 * Stacked bars over time with a y axis, a legend and a table for screen readers (the same
 * figures in text). starts are bucket start times (seconds), one per value.
 */
export function BarChart({
  title,
  starts,
  series,
  format,
  stacked = true,
}: {
  title: string;
  starts: number[];
  series: SeriesDef[];
  format: (v: number) => string;
  stacked?: boolean;
}) {
  const id = useId();
  const w = 600;
  const h = 140;
  const n = starts.length;
  const sums = starts.map((_, i) =>
    stacked ? series.reduce((a, s) => a + (s.values[i] ?? 0), 0) : Math.max(...series.map((s) => s.values[i] ?? 0)),
  );
  const max = niceMax(sums);
  const bw = n > 0 ? w / n : w;
  const total = series.map((s) => s.values.reduce((a, b) => a + b, 0));
  return (
    <figure className="chart" aria-labelledby={id}>
      <figcaption id={id}>
        <span className="chart-title">{title}</span>
        <span className="legend">
          {series.map((s) => (
            <span key={s.name} className="legend-item">
              <span className={`swatch ${s.className}`} aria-hidden="true" />
              {s.name}
            </span>
          ))}
        </span>
      </figcaption>
      <div className="chart-body">
        <div className="chart-axis" aria-hidden="true">
          <span>{format(max)}</span>
          <span>{format(max / 2)}</span>
          <span>0</span>
        </div>
        <svg viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="none" className="chart-svg" aria-hidden="true">
          <line x1="0" x2={w} y1={h / 2} y2={h / 2} className="grid" />
          {starts.map((_, i) => {
            let y = h;
            return series.map((s) => {
              const v = s.values[i] ?? 0;
              if (v <= 0) return null;
              const bh = (v / max) * h;
              const top = stacked ? y - bh : h - bh;
              if (stacked) y -= bh;
              return <rect key={`${s.name}-${i}`} x={i * bw} y={top} width={Math.max(bw - 0.5, 0.5)} height={bh} className={s.className} />;
            });
          })}
        </svg>
      </div>
      <table className="sr-only">
        <caption>{title}, totals over the window</caption>
        <tbody>
          {series.map((s, i) => (
            <tr key={s.name}>
              <th scope="row">{s.name}</th>
              <td>{format(total[i])}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
