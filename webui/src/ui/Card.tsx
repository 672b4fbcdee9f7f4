import type { ComponentProps, ReactNode } from "react";

/** A card of a page: a section named by its heading (aria-labelledby the heading's id), with
 *  what sits beside the heading in extra. Other props go to the section. */
export function Card({
  id,
  title,
  extra,
  className,
  children,
  ...rest
}: { id: string; title: ReactNode; extra?: ReactNode } & Omit<ComponentProps<"section">, "id" | "title">) {
  return (
    <section aria-labelledby={id} className={className ? `card ${className}` : "card"} {...rest}>
      <div className="card-head">
        <h2 id={id}>{title}</h2>
        {extra}
      </div>
      {children}
    </section>
  );
}
