import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { ago, absTime, enumName, tsSeconds } from "../format";
import type { Tone } from "../format";
import { ClusterService } from "../gen/v9/cluster/v1/cluster_pb";
import type { Member, NodeInfo } from "../gen/v9/cluster/v1/cluster_pb";
import { NodeStatus, Runtime } from "../gen/v9/state/v1/state_pb";
import { can, useIdentity } from "../identity";
import { onApiError, useNow } from "../live";
import { Badge } from "../ui/Badge";
import { ConfirmButton } from "../ui/Confirm";
import { Empty, ErrorNotice, Loading } from "../ui/Notice";
import { TableHead } from "../ui/TableHead";
import { Page } from "../ui/Section";

/** Members of the Raft cluster and the nodes registered in the replicated state. */
export function NodesPage() {
  const status = useQuery(ClusterService.method.status, {}, { refetchInterval: 1_000 });
  const nodes = useQuery(ClusterService.method.nodes, {}, { refetchInterval: 1_000 });
  const drain = useMutation(ClusterService.method.drain, { onError: onApiError });
  const qc = useQueryClient();
  const [confirm, setConfirm] = useState("");
  const mayDrain = can(useIdentity(), "admin");
  const now = useNow(1000);
  const byId = new Map<string, Member>((status.data?.members ?? []).map((m) => [m.id, m]));
  const list = nodes.data?.nodes ?? [];
  const ids = [...new Set([...list.map((n) => n.node?.id ?? ""), ...byId.keys()])].filter(Boolean).sort();
  const info = new Map<string, NodeInfo>(list.map((n) => [n.node?.id ?? "", n]));
  const error = status.error ?? nodes.error;

  return (
    <Page
      id="nodes-h"
      title="Nodes"
      extra={
        status.data && (
          <p className="sub">
            Answered by <strong>{status.data.nodeId}</strong> ({status.data.raftState.toLowerCase()}); leader{" "}
            <strong>{status.data.leaderId || "none"}</strong>; applied index {String(status.data.appliedIndex)}
          </p>
        )
      }
    >
      {error && <ErrorNotice error={error} retrying />}
      {drain.error && <ErrorNotice error={drain.error} />}
      {!status.data && !nodes.data && !error && <Loading what="nodes" />}
      {status.data && !status.data.leaderId && (
        <div className="notice notice-warn" role="alert">
          <strong>No leader.</strong> The cluster has lost its quorum or is electing one: components keep serving, but nothing
          can change until a majority of nodes is back.
        </div>
      )}
      {(status.data || nodes.data) && ids.length === 0 && <Empty title="No nodes registered yet" />}
      {ids.length > 0 && (
        <div className="table-wrap">
          <table className="table nodes-table">
            <TableHead columns={["Node", "Status", "Raft", { label: "Runtimes", hideNarrow: true }, "Placements", { label: "Last heartbeat", hideNarrow: true }, { label: "Actions", srOnly: true }]} />
            <tbody>
              {ids.map((id) => {
                const m = byId.get(id);
                const ni = info.get(id);
                const n = ni?.node;
                const st = nodeState(n?.status, n?.drain ?? false, !!m);
                const hb = tsSeconds(ni?.lastHeartbeat);
                const draining = n?.drain ?? false;
                return (
                  <tr key={id} data-node={id}>
                    <th scope="row">
                      {id}
                      {m?.leader && <span className="tag">leader</span>}
                      <div className="sub">{n?.apiAddr || m?.apiAddr}</div>
                    </th>
                    <td>
                      <Badge tone={st.tone}>{st.label}</Badge>
                    </td>
                    <td>{m ? m.suffrage : "not a member"}</td>
                    <td className="hide-narrow">{(n?.runtimes ?? []).map((r) => enumName(Runtime, r, "RUNTIME_")).join(", ") || "—"}</td>
                    <td className="num">
                      {ni ? `${ni.running}/${ni.placements}` : "—"}
                      <span className="sr-only"> running of wanted</span>
                    </td>
                    <td className="hide-narrow" title={absTime(hb)}>
                      {ago(hb, now, true)}
                    </td>
                    <td>
                      {n &&
                        mayDrain &&
                        (
                          <ConfirmButton
                            id={id}
                            open={confirm}
                            setOpen={setConfirm}
                            label={draining ? "Undrain" : "Drain"}
                            confirmLabel={draining ? `Undrain ${id}` : `Drain ${id}`}
                            disabled={drain.isPending}
                            onConfirm={() => drain.mutate({ nodeId: id, undo: draining }, { onSuccess: () => qc.invalidateQueries() })}
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
        Draining moves every placement off a node (replacements start first) and keeps new ones off it. CLI:{" "}
        <code>v9 nodes drain ID</code>, <code>v9 nodes drain ID --undo</code>.
      </p>
    </Page>
  );
}

function nodeState(s: NodeStatus | undefined, drain: boolean, member: boolean): { label: string; tone: Tone } {
  if (s === undefined) return { label: member ? "registering" : "unknown", tone: "muted" };
  if (s === NodeStatus.DOWN) return { label: "down", tone: "bad" };
  if (drain || s === NodeStatus.DRAINING) return { label: "draining", tone: "warn" };
  if (s === NodeStatus.READY) return { label: "ready", tone: "ok" };
  return { label: enumName(NodeStatus, s, "NODE_STATUS_"), tone: "muted" };
}
