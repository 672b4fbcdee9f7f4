import { clone, create } from "@bufbuild/protobuf";
import { useMutation } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "wouter";
import { clients } from "../clients";
import { explain } from "../errors";
import { ago, absTime, bytes, componentHealth, enumName, millis, shortSha, sourceLabel, tsSeconds } from "../format";
import { ComponentService } from "../gen/v9/component/v1/component_pb";
import type { ComponentStatus } from "../gen/v9/component/v1/component_pb";
import { DeployService } from "../gen/v9/deploy/v1/deploy_pb";
import {
  ComponentSpecSchema,
  DeploymentStatus,
  DesiredState,
  PlacementDesired,
  PlacementObserved,
  Runtime,
} from "../gen/v9/state/v1/state_pb";
import type { Component, Deployment } from "../gen/v9/state/v1/state_pb";
import { can, useIdentity } from "../identity";
import { onApiError, useBlocking, useNow, waitMs } from "../live";
import { Badge } from "../ui/Badge";
import { Card } from "../ui/Section";
import { Logs } from "../ui/Logs";
import { Secrets } from "../ui/Secrets";
import { Empty, ErrorNotice, Loading } from "../ui/Notice";
import { ProxyLink } from "../ui/ProxyLink";
import { Stats } from "../ui/Stats";
import { firstLine } from "./Components";
import { TableHead } from "../ui/TableHead";

export function ComponentPage({ name }: { name: string }) {
  const live = useBlocking(
    (minIndex, signal) => clients.components.get({ name, read: { minIndex, waitMs } }, { signal, timeoutMs: waitMs + 10_000 }),
    [name],
  );
  const c = live.data?.component;
  return (
    <section aria-labelledby="component-h">
      <nav aria-label="Breadcrumb" className="crumbs">
        <Link href="/">Components</Link> <span aria-hidden="true">/</span> <span aria-current="page">{name}</span>
      </nav>
      {live.error !== undefined && <ErrorNotice error={live.error} retrying={live.retrying} />}
      {!c && live.error === undefined && <Loading what={name} />}
      {c && live.data && <Loaded c={c} s={live.data.status} />}
    </section>
  );
}

function Loaded({ c, s }: { c: Component; s?: ComponentStatus }) {
  const paused = c.desired === DesiredState.PAUSED;
  const h = componentHealth(paused, s?.running ?? 0, s?.wanted ?? 0, s?.failed ?? 0, !!c.activeDeploymentId);
  return (
    <>
      <div className="page-head">
        <h1 id="component-h">
          {c.name} <Badge tone={h.tone}>{h.label}</Badge>
        </h1>
        <Actions c={c} />
      </div>
      <dl className="facts">
        <div>
          <dt>Runtime</dt>
          <dd>{enumName(Runtime, c.runtime, "RUNTIME_")}</dd>
        </div>
        <div>
          <dt>Replicas</dt>
          <dd>
            {s?.running ?? 0} running of {s?.wanted ?? 0} wanted
          </dd>
        </div>
        <div>
          <dt>Source</dt>
          <dd>{sourceLabel(c.source)}</dd>
        </div>
        <div>
          <dt>URL</dt>
          <dd>
            <ProxyLink name={c.name} />
          </dd>
        </div>
      </dl>
      <Stats component={c.name} />
      <Deployments c={c} />
      <Placements s={s} />
      <Settings c={c} />
      <Secrets component={c.name} />
      <Logs component={c.name} />
    </>
  );
}

function Actions({ c }: { c: Component }) {
  const me = useIdentity();
  const paused = c.desired === DesiredState.PAUSED;
  const pause = useMutation(ComponentService.method.pause, { onError: onApiError });
  const resume = useMutation(ComponentService.method.resume, { onError: onApiError });
  const scale = useMutation(ComponentService.method.scale, { onError: onApiError });
  const spec = c.spec;
  const [replicas, setReplicas] = useState(String(c.replicas));
  const busy = pause.isPending || resume.isPending || scale.isPending;
  const err = pause.error ?? resume.error ?? scale.error;
  const fixed = !!spec && spec.scaleMin === spec.scaleMax;
  if (!can(me, "developer")) {
    return me ? <p className="sub">Your role ({me.role || "none"}) can look but not change components.</p> : null;
  }
  return (
    <div className="actions">
      {paused ? (
        <button type="button" className="btn btn-primary" disabled={busy} onClick={() => resume.mutate({ name: c.name })}>
          {resume.isPending ? "Resuming…" : "Resume"}
        </button>
      ) : (
        <button type="button" className="btn" disabled={busy} onClick={() => pause.mutate({ name: c.name })}>
          {pause.isPending ? "Pausing…" : "Pause"}
        </button>
      )}
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          scale.mutate({ name: c.name, replicas: Number(replicas) });
        }}
      >
        <label htmlFor="replicas">Replicas</label>
        <input
          id="replicas"
          className="input input-num"
          type="number"
          min={spec?.scaleMin ?? 0}
          max={spec?.scaleMax ?? 1}
          value={replicas}
          disabled={fixed || busy}
          aria-describedby="replicas-range"
          onChange={(e) => setReplicas(e.target.value)}
        />
        <button type="submit" className="btn" disabled={fixed || busy || replicas === String(c.replicas)}>
          Scale
        </button>
        <span id="replicas-range" className="sub">
          {spec ? `${spec.scaleMin}–${spec.scaleMax}${spec.exclusive ? ", exclusive" : ""}` : ""}
        </span>
      </form>
      {err && (
        <div className="notice notice-bad" role="alert">
          <strong>{explain(err).title}.</strong> {explain(err).detail}. {explain(err).action}
        </div>
      )}
    </div>
  );
}

/** The URL the component answers at through the proxy of the node serving this page. */
function Deployments({ c }: { c: Component }) {
  // A blocking query on the deployments table: a build, a rollout or a rollback is on screen
  // within a round trip of its commit, with no polling.
  const q = useBlocking(
    (minIndex, signal) => clients.deploy.list({ component: c.name, minIndex, waitMs }, { signal, timeoutMs: waitMs + 10_000 }),
    [c.name],
  );
  const rollback = useMutation(DeployService.method.rollback, { onError: onApiError });
  const qc = useQueryClient();
  const mayRollback = can(useIdentity(), "developer");
  const now = useNow();
  // Newest first, whatever order the API sends.
  const list = [...(q.data?.deployments ?? [])].sort((a, b) => (a.createIndex < b.createIndex ? 1 : a.createIndex > b.createIndex ? -1 : 0));
  return (
    <Card id="deployments-h" title="Deployments" data-modify-index={String(c.modifyIndex)}>
      {q.error !== undefined && <ErrorNotice error={q.error} retrying={q.retrying} />}
      {rollback.error && <ErrorNotice error={rollback.error} />}
      {!q.data && q.error === undefined && <Loading what="deployments" />}
      {q.data && list.length === 0 && (
        <Empty title="No deployments yet">
          <p>
            Push to the linked branch, or run <code>v9 deploy</code> in the component's directory.
          </p>
        </Empty>
      )}
      {list.length > 0 && (
        <div className="table-wrap">
          <table className="table">
            <TableHead columns={["Commit", "Status", { label: "Author", hideNarrow: true }, { label: "Created", hideNarrow: true }, { label: "Actions", srOnly: true }]} />
            <tbody>
              {list.slice(0, 50).map((d) => (
                <DeploymentRow
                  key={d.id}
                  c={c}
                  d={d}
                  now={now}
                  mayRollback={mayRollback}
                  pending={rollback.isPending && rollback.variables?.deploymentId === d.id}
                  onRollback={() =>
                    rollback.mutate({ component: c.name, deploymentId: d.id }, { onSuccess: () => qc.invalidateQueries() })
                  }
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

function DeploymentRow({
  c,
  d,
  now,
  mayRollback,
  pending,
  onRollback,
}: {
  c: Component;
  d: Deployment;
  now: number;
  mayRollback: boolean;
  pending: boolean;
  onRollback: () => void;
}) {
  const active = c.activeDeploymentId === d.id;
  const st = enumName(DeploymentStatus, d.status, "DEPLOYMENT_STATUS_");
  const tone = d.status === DeploymentStatus.READY ? "ok" : d.status === DeploymentStatus.FAILED ? "bad" : "warn";
  const created = tsSeconds(d.createTime);
  const commitURL = c.source?.githubRepo && /^[0-9a-f]{40}$/.test(d.commitSha) ? `https://github.com/${c.source.githubRepo}/commit/${d.commitSha}` : "";
  return (
    <tr data-deployment={d.id}>
      <td>
        {commitURL ? (
          <a href={commitURL} target="_blank" rel="noreferrer">
            <code>{shortSha(d.commitSha)}</code>
          </a>
        ) : (
          <code>{shortSha(d.commitSha) || d.id.slice(0, 8)}</code>
        )}{" "}
        <span className="msg">{firstLine(d.commitMessage)}</span>
        {active && <span className="tag">active</span>}
        {d.error && <div className="sub bad-text">{d.error}</div>}
        <div className="sub show-narrow" title={absTime(created)}>
          {ago(created, now)}
        </div>
      </td>
      <td>
        <Badge tone={tone}>{st}</Badge>
      </td>
      <td className="hide-narrow">{d.author || d.pusher || "—"}</td>
      <td className="hide-narrow" title={absTime(created)}>
        {ago(created, now)}
      </td>
      <td className="actions-cell">
        {mayRollback && !active && d.status === DeploymentStatus.READY && (
          <button type="button" className="btn btn-small" disabled={pending} onClick={onRollback} aria-label={`Roll back to ${shortSha(d.commitSha) || d.id}`}>
            {pending ? "Rolling back…" : "Rollback"}
          </button>
        )}
      </td>
    </tr>
  );
}

function Placements({ s }: { s?: ComponentStatus }) {
  const ps = s?.placements ?? [];
  return (
    <Card id="placements-h" title="Placements">
      {ps.length === 0 ? (
        <Empty title="No placements">
          <p>Paused components, and wasm components scaled to zero, run nowhere until a request comes.</p>
        </Empty>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <TableHead columns={["Node", "Wanted", "Observed", { label: "Deployment", hideNarrow: true }]} />
            <tbody>
              {ps.map((p) => {
                const obs = enumName(PlacementObserved, p.observed, "PLACEMENT_OBSERVED_");
                const tone =
                  p.observed === PlacementObserved.RUNNING ? "ok" : p.observed === PlacementObserved.FAILED || p.observed === PlacementObserved.LOST ? "bad" : "muted";
                return (
                  <tr key={p.id}>
                    <td>{p.nodeId}</td>
                    <td>{enumName(PlacementDesired, p.desired, "PLACEMENT_DESIRED_")}</td>
                    <td>
                      <Badge tone={tone}>{obs === "unknown" ? "pending" : obs}</Badge>
                      {p.reason && <div className="sub">{p.reason}</div>}
                    </td>
                    <td className="hide-narrow">
                      <code>{p.deploymentId.slice(0, 8)}</code>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

function Settings({ c }: { c: Component }) {
  const spec = c.spec;
  const update = useMutation(ComponentService.method.updateSpec, { onError: onApiError });
  const mayEdit = can(useIdentity(), "developer");
  const [env, setEnv] = useState<[string, string][] | null>(null);
  // The component's modify index when editing began: the save applies only if nobody changed
  // the component since (else it would erase their change), and says "changed by someone else".
  const [editedFrom, setEditedFrom] = useState(0n);
  const rows = env ?? Object.entries(spec?.env ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  const editing = env !== null;
  const save = () => {
    const next = spec ? clone(ComponentSpecSchema, spec) : create(ComponentSpecSchema);
    next.env = Object.fromEntries(rows.filter(([k]) => k.trim() !== "").map(([k, v]) => [k.trim(), v]));
    update.mutate({ name: c.name, spec: next, ifModifyIndex: editedFrom }, { onSuccess: () => setEnv(null) });
  };
  return (
    <Card id="settings-h" title="Settings">
      <dl className="facts">
        <div>
          <dt>Scale</dt>
          <dd>
            {spec?.scaleMin ?? 0}–{spec?.scaleMax ?? 0}
            {spec?.exclusive ? " (exclusive: never two instances at once)" : ""}
          </dd>
        </div>
        <div>
          <dt>Memory</dt>
          <dd>{bytes(spec?.memoryBytes ?? 0n)}</dd>
        </div>
        <div>
          <dt>Timeout</dt>
          <dd>{millis(spec?.timeoutMs ?? 0)}</dd>
        </div>
        <div>
          <dt>Concurrency</dt>
          <dd>{spec?.concurrency || "—"}</dd>
        </div>
      </dl>
      {c.specError && (
        <div className="notice notice-bad" role="alert">
          Last change of settings failed and was undone: {c.specError}
        </div>
      )}
      <h3>Environment</h3>
      {update.error && <ErrorNotice error={update.error} />}
      {rows.length === 0 && !editing && <p className="sub">No variables.</p>}
      {(rows.length > 0 || editing) && (
        <table className="table env-table">
          <TableHead columns={["Name", "Value", ...(editing ? [{ label: "Remove", srOnly: true }] : [])]} />
          <tbody>
            {rows.map(([k, v], i) => (
              <tr key={i}>
                <td>
                  {editing ? (
                    <input className="input" aria-label={`Name of variable ${i + 1}`} value={k} onChange={(e) => setEnv(rows.map((r, j) => (j === i ? [e.target.value, r[1]] : r)))} />
                  ) : (
                    <code>{k}</code>
                  )}
                </td>
                <td>
                  {editing ? (
                    <input className="input" aria-label={`Value of ${k || `variable ${i + 1}`}`} value={v} onChange={(e) => setEnv(rows.map((r, j) => (j === i ? [r[0], e.target.value] : r)))} />
                  ) : (
                    <code>{v}</code>
                  )}
                </td>
                {editing && (
                  <td>
                    <button type="button" className="btn btn-small" aria-label={`Remove ${k || `variable ${i + 1}`}`} onClick={() => setEnv(rows.filter((_, j) => j !== i))}>
                      Remove
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="toolbar">
        {editing ? (
          <>
            <button type="button" className="btn btn-small" onClick={() => setEnv([...rows, ["", ""]])}>
              Add variable
            </button>
            <button type="button" className="btn btn-small btn-primary" disabled={update.isPending} onClick={save}>
              {update.isPending ? "Saving…" : "Save"}
            </button>
            <button type="button" className="btn btn-small" onClick={() => setEnv(null)}>
              Cancel
            </button>
          </>
        ) : (
          mayEdit && (
            <button
              type="button"
              className="btn btn-small"
              onClick={() => {
                setEditedFrom(c.modifyIndex);
                setEnv(rows);
              }}
            >
              Edit environment
            </button>
          )
        )}
      </div>
      <p className="sub">
        The CLI does the same: <code>v9 component update {c.name} --env NAME=value --unset-env NAME</code>.
      </p>
    </Card>
  );
}
