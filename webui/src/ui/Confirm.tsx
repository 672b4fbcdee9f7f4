/**
 * A button that asks once more in place: "Label…" opens the confirming pair ("confirmLabel",
 * "Cancel"). The table that holds several owns which one is open (`open`, `setOpen` with
 * this row's `id`), so that opening one closes the others.
 */
export function ConfirmButton({
  id,
  open,
  setOpen,
  label,
  confirmLabel,
  onConfirm,
  disabled,
}: {
  id: string;
  open: string;
  setOpen: (id: string) => void;
  label: string;
  confirmLabel: string;
  onConfirm: () => void;
  disabled?: boolean;
}) {
  if (open !== id) {
    return (
      <button type="button" className="btn btn-small" onClick={() => setOpen(id)} disabled={disabled}>
        {label}…
      </button>
    );
  }
  return (
    <span className="confirm">
      <button
        type="button"
        className="btn btn-small btn-danger"
        onClick={() => {
          setOpen("");
          onConfirm();
        }}
      >
        {confirmLabel}
      </button>
      <button type="button" className="btn btn-small" onClick={() => setOpen("")}>
        Cancel
      </button>
    </span>
  );
}
