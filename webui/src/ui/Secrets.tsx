import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useState } from "react";
import { ago, absTime, tsSeconds } from "../format";
import { SecretService } from "../gen/v9/secret/v1/secret_pb";
import { can, useIdentity } from "../identity";
import { onApiError, useNow } from "../live";
import { secretNameProblem } from "../secrets";
import { Empty, ErrorNotice, Loading } from "./Notice";
import { TableHead } from "./TableHead";
import { Card } from "./Section";

/**
 * A component's secrets: names and update times only. Values are write-only: typed here,
 * sealed by the cluster keyring, and never sent back by any API.
 */
export function Secrets({ component }: { component: string }) {
  const me = useIdentity();
  const mayEdit = can(me, "developer");
  const q = useQuery(SecretService.method.list, { component }, { enabled: mayEdit, refetchInterval: 15_000 });
  const set = useMutation(SecretService.method.set, { onError: onApiError, onSuccess: () => q.refetch() });
  const del = useMutation(SecretService.method.delete, { onError: onApiError, onSuccess: () => q.refetch() });
  const [name, setName] = useState("");
  const [value, setValue] = useState("");
  const [touched, setTouched] = useState(false);
  const now = useNow();
  const problem = secretNameProblem(name.trim());
  if (!mayEdit) return null;
  const list = q.data?.secrets ?? [];
  return (
    <Card id="secrets-h" title="Secrets">
      <p className="sub">
        Set as environment variables of the component's instances, which restart with them. Values are write-only: nobody can read
        them back, here or through the API.
      </p>
      {q.error && <ErrorNotice error={q.error} />}
      {set.error && <ErrorNotice error={set.error} />}
      {del.error && <ErrorNotice error={del.error} />}
      {!q.data && !q.error && <Loading what="secrets" />}
      {q.data && list.length === 0 && <Empty title="No secrets" />}
      {list.length > 0 && (
        <table className="table env-table">
          <TableHead columns={["Name", "Updated", { label: "Actions", srOnly: true }]} />
          <tbody>
            {list.map((s) => {
              const t = tsSeconds(s.updateTime);
              return (
                <tr key={s.name} data-secret={s.name}>
                  <td>
                    <code>{s.name}</code>
                  </td>
                  <td title={absTime(t)}>{ago(t, now)}</td>
                  <td>
                    <button
                      type="button"
                      className="btn btn-small"
                      disabled={del.isPending}
                      aria-label={`Delete secret ${s.name}`}
                      onClick={() => {
                        if (window.confirm(`Delete the secret ${s.name}? The component's instances restart without it.`)) del.mutate({ component, name: s.name });
                      }}
                    >
                      Delete
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <form
        className="inline-form secret-form"
        onSubmit={(e) => {
          e.preventDefault();
          setTouched(true);
          if (problem) return;
          set.mutate({ component, name: name.trim(), value: new TextEncoder().encode(value) }, {
            onSuccess: () => {
              setName("");
              setValue("");
              setTouched(false);
            },
          });
        }}
      >
        <label htmlFor="secret-name">Name</label>
        <input
          id="secret-name"
          className="input"
          autoComplete="off"
          spellCheck={false}
          value={name}
          aria-invalid={touched && !!problem}
          aria-describedby="secret-name-problem"
          onChange={(e) => setName(e.target.value)}
        />
        <label htmlFor="secret-value">Value</label>
        <input id="secret-value" className="input" type="password" autoComplete="new-password" value={value} onChange={(e) => setValue(e.target.value)} />
        <button type="submit" className="btn btn-small btn-primary" disabled={set.isPending}>
          {set.isPending ? "Setting…" : "Set secret"}
        </button>
        <span id="secret-name-problem" className="sub bad-text" aria-live="polite">
          {touched ? problem : ""}
        </span>
      </form>
      <p className="sub">
        The CLI does the same: <code>v9 secret set {component} NAME</code>, <code>v9 secret list {component}</code>, <code>v9 secret delete {component} NAME</code>.
      </p>
    </Card>
  );
}
