/** One header cell: a label, hidden on narrow screens (`hideNarrow`) or read by screen
 * readers only (`srOnly`, for a column of buttons). */
export type Column = string | { label: string; hideNarrow?: boolean; srOnly?: boolean };

/** The header row every table of the console uses, with column scopes for screen readers. */
export function TableHead({ columns }: { columns: Column[] }) {
  return (
    <thead>
      <tr>
        {columns.map((c) => {
          const col = typeof c === "string" ? { label: c } : c;
          return (
            <th key={col.label} scope="col" className={col.hideNarrow ? "hide-narrow" : undefined}>
              {col.srOnly ? <span className="sr-only">{col.label}</span> : col.label}
            </th>
          );
        })}
      </tr>
    </thead>
  );
}
