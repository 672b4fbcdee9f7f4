import { explain } from "../errors";

/** An API error in words, with what to do; role="alert" so screen readers announce it. */
export function ErrorNotice({ error, retrying, onRetry }: { error: unknown; retrying?: boolean; onRetry?: () => void }) {
  const e = explain(error);
  return (
    <div className="notice notice-bad" role="alert">
      <strong>{e.title}.</strong> {e.action}
      <div className="notice-detail">
        {e.detail}
        {retrying ? " — retrying…" : ""}
      </div>
      {onRetry && (
        <button type="button" className="btn btn-small" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: React.ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children}
    </div>
  );
}
