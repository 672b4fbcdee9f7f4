import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { ago, absTime, tsSeconds } from "../format";
import { ACLService } from "../gen/v9/acl/v1/acl_pb";
import { can, useIdentity } from "../identity";
import type { Role } from "../identity";
import { useNow } from "../live";
import { ConfirmButton } from "../ui/Confirm";
import { Empty, ErrorNotice, Loading } from "../ui/Notice";
import { TableHead } from "../ui/TableHead";
import { Page } from "../ui/Section";

const ttls = [
  { label: "never", seconds: 0 },
  { label: "1 day", seconds: 86400 },
  { label: "30 days", seconds: 30 * 86400 },
  { label: "1 year", seconds: 365 * 86400 },
];

/** API tokens: create one with a role and an expiry (its secret shown once), list, revoke. */
export function TokensPage() {
  const me = useIdentity();
  const list = useQuery(ACLService.method.listTokens, {});
  const create = useMutation(ACLService.method.createToken);
  const revoke = useMutation(ACLService.method.revokeToken);
  const qc = useQueryClient();
  const now = useNow();
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const [ttl, setTtl] = useState(0);
  const [secret, setSecret] = useState("");
  const [confirm, setConfirm] = useState("");
  const roles: Role[] = (["viewer", "developer", "admin"] as Role[]).filter((r) => can(me, r));

  return (
    <Page id="tokens-h" title="API tokens">
      {secret && (
        <div className="notice notice-warn" role="alert">
          <strong>Copy the new token now: it is shown only once.</strong>
          <div>
            <code className="secret" data-testid="new-secret">
              {secret}
            </code>
          </div>
          <button type="button" className="btn btn-small" onClick={() => setSecret("")}>
            I have copied it
          </button>
        </div>
      )}
      <form
        className="card inline-form"
        aria-label="Create a token"
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate(
            { name: name.trim(), role, ttlSeconds: BigInt(ttl) },
            {
              onSuccess: (r) => {
                setSecret(r.secret);
                setName("");
                qc.invalidateQueries();
              },
            },
          );
        }}
      >
        <label htmlFor="tok-name">Name</label>
        <input id="tok-name" className="input" required value={name} onChange={(e) => setName(e.target.value)} placeholder="ci-deploy" />
        <label htmlFor="tok-role">Role</label>
        <select id="tok-role" className="input" value={role} onChange={(e) => setRole(e.target.value as Role)}>
          {roles.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
        <label htmlFor="tok-ttl">Expires</label>
        <select id="tok-ttl" className="input" value={ttl} onChange={(e) => setTtl(Number(e.target.value))}>
          {ttls.map((t) => (
            <option key={t.seconds} value={t.seconds}>
              {t.label}
            </option>
          ))}
        </select>
        <button type="submit" className="btn btn-primary" disabled={create.isPending || !name.trim()}>
          {create.isPending ? "Creating…" : "Create token"}
        </button>
      </form>
      {create.error && <ErrorNotice error={create.error} />}
      {revoke.error && <ErrorNotice error={revoke.error} />}
      {list.error && <ErrorNotice error={list.error} />}
      {!list.data && !list.error && <Loading what="tokens" />}
      {list.data && list.data.tokens.length === 0 && <Empty title="No tokens you can see" />}
      {list.data && list.data.tokens.length > 0 && (
        <div className="table-wrap">
          <table className="table">
            <TableHead columns={["Name", "Role", { label: "Created", hideNarrow: true }, "Expires", { label: "Last used", hideNarrow: true }, { label: "Actions", srOnly: true }]} />
            <tbody>
              {list.data.tokens.map((t) => {
                const revoked = tsSeconds(t.revokeTime);
                const exp = tsSeconds(t.expireTime);
                return (
                  <tr key={t.accessorId} data-token={t.name}>
                    <th scope="row">
                      {t.name}
                      <div className="sub">
                        <code>{t.accessorId.slice(0, 8)}</code> by {t.creator || "bootstrap"}
                      </div>
                    </th>
                    <td>{t.role}</td>
                    <td className="hide-narrow" title={absTime(tsSeconds(t.createTime))}>
                      {ago(tsSeconds(t.createTime), now)}
                    </td>
                    <td>{revoked ? "revoked" : exp ? absTime(exp) : "never"}</td>
                    <td className="hide-narrow">{ago(tsSeconds(t.lastUsedTime), now)}</td>
                    <td>
                      {!revoked &&
                        (
                          <ConfirmButton
                            id={t.accessorId}
                            open={confirm}
                            setOpen={setConfirm}
                            label="Revoke"
                            confirmLabel={`Revoke ${t.name}`}
                            onConfirm={() => revoke.mutate({ accessorId: t.accessorId }, { onSuccess: () => qc.invalidateQueries() })}
                          />
                        )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <p className="sub">
        CLI: <code>v9 token create --name NAME --role viewer --ttl 720h</code>, <code>v9 token list</code>, <code>v9 token revoke ACCESSOR</code>.
      </p>
    </Page>
  );
}

/** The most recent writes: who did what, newest first. */
export function AuditPage() {
  const q = useQuery(ACLService.method.audit, { limit: 500 }, { refetchInterval: 5_000 });
  const now = useNow();
  const entries = [...(q.data?.entries ?? [])].reverse();
  return (
    <Page id="audit-h" title="Audit log">
      {q.error && <ErrorNotice error={q.error} />}
      {!q.data && !q.error && <Loading what="the audit log" />}
      {q.data && entries.length === 0 && <Empty title="No writes recorded yet" />}
      {entries.length > 0 && (
        <div className="table-wrap">
          <table className="table">
            <TableHead columns={["When", "Who", "What", "Target"]} />
            <tbody>
              {entries.slice(0, 200).map((e) => (
                <tr key={String(e.index)}>
                  <td title={absTime(tsSeconds(e.time))}>{ago(tsSeconds(e.time), now)}</td>
                  <td>{e.actor}</td>
                  <td>
                    <code>{e.op}</code>
                  </td>
                  <td>{e.target}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p className="sub">
        CLI: <code>v9 audit</code>.
      </p>
    </Page>
  );
}
