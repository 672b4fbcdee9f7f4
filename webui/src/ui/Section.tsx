import type { ComponentProps, ReactNode } from "react";

type TitledProps = { id: string; title: ReactNode; extra?: ReactNode } & Omit<ComponentProps<"section">, "id" | "title">;

/** A section named by its heading (aria-labelledby the heading's id), with what sits beside
 *  the heading in extra. Other props go to the section. */
function Titled({ id, title, extra, page, children, ...rest }: TitledProps & { page?: boolean }) {
  const Heading = page ? "h1" : "h2";
  return (
    <section aria-labelledby={id} {...rest}>
      <div className={page ? "page-head" : "card-head"}>
        <Heading id={id}>{title}</Heading>
        {extra}
      </div>
      {children}
    </section>
  );
}

/** A page: its h1 names it. */
export function Page(props: TitledProps) {
  return <Titled page {...props} />;
}

/** A card of a page: its h2 names it. */
export function Card({ className, ...props }: TitledProps) {
  return <Titled className={className ? `card ${className}` : "card"} {...props} />;
}
