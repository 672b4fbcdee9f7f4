import { areaPath, linePath, points } from "../series";

/** A small line of request counts; the label says in words what it shows. */
export function Sparkline({ values, label, width = 120, height = 28 }: { values: number[]; label: string; width?: number; height?: number }) {
  const pts = points(values, width, height - 2);
  return (
    <svg className="spark" width={width} height={height} viewBox={`0 -1 ${width} ${height}`} role="img" aria-label={label}>
      <path d={areaPath(pts, height - 2)} className="spark-area" />
      <path d={linePath(pts)} className="spark-line" />
    </svg>
  );
}
