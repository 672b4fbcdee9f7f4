import { Code, ConnectError } from "@connectrpc/connect";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useInfiniteQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { Link } from "wouter";
import { clients } from "../clients";
import { githubSignInURL } from "../auth";
import { explain } from "../errors";
import { enumName } from "../format";
import { ComponentService } from "../gen/v9/component/v1/component_pb";
import type { WatchResponse } from "../gen/v9/deploy/v1/deploy_pb";
import { GitHubService } from "../gen/v9/github/v1/github_pb";
import type { Repository } from "../gen/v9/github/v1/github_pb";
import { DeploymentStatus, Runtime } from "../gen/v9/state/v1/state_pb";
import { can, useIdentity } from "../identity";
import { onApiError, sleep } from "../live";
import { componentNameProblem, matchRepos, nameFromRepo } from "../start";
import { Badge } from "../ui/Badge";
import { Card, Page } from "../ui/Section";
import { Logs } from "../ui/Logs";
import { Empty, ErrorNotice, Loading } from "../ui/Notice";
import { useProxyURL } from "../ui/ProxyLink";

/**
 * The seed's flow: pick one of your GitHub repositories (listed with your own GitHub grant)
 * and a branch, see whether it has a v9.toml, press Start. The cluster links it (a webhook,
 * so every push deploys) and builds the branch head; the build log streams here, and the
 * page ends on the component's URL answering.
 */
export function StartPage() {
  const me = useIdentity();
  const [started, setStarted] = useState<{ name: string; repo: string; branch: string; deploymentId: string } | null>(null);
  if (me && !can(me, "developer")) {
    return (
      <section aria-labelledby="start-h">
        <h1 id="start-h">Start</h1>
        <p className="sub">Your role ({me.role || "none"}) cannot create components. Ask an admin for the developer role.</p>
      </section>
    );
  }
  return (
    <Page id="start-h" title="Start">
      {started ? <Progress {...started} /> : <Picker onStarted={setStarted} />}
    </Page>
  );
}

function Picker({ onStarted }: { onStarted: (s: { name: string; repo: string; branch: string; deploymentId: string }) => void }) {
  const repos = useInfiniteQuery({
    queryKey: ["github-repos"],
    queryFn: ({ pageParam }) => clients.github.listRepositories({ page: pageParam }),
    initialPageParam: 1,
    getNextPageParam: (last, all) => (last.more ? all.length + 1 : undefined),
    retry: (n, err) => !(err instanceof ConnectError && [Code.FailedPrecondition, Code.Unauthenticated, Code.PermissionDenied].includes(err.code)) && n < 2,
    staleTime: 60_000,
  });
  const [query, setQuery] = useState("");
  const [repo, setRepo] = useState<Repository | null>(null);
  const all = repos.data?.pages.flatMap((p) => p.repositories) ?? [];
  const shown = matchRepos(all, query);
  useEffect(() => {
    if (repos.error) onApiError(repos.error);
  }, [repos.error]);

  if (repos.error) {
    const needGitHub = repos.error instanceof ConnectError && repos.error.code === Code.FailedPrecondition;
    if (needGitHub) {
      return (
        <div className="card start-signin">
          <h2>Sign in with GitHub to list your repositories</h2>
          <p className="sub">{explain(repos.error).detail}</p>
          <a className="btn btn-primary" href={githubSignInURL("/auth/github/login", "/start")}>
            Sign in with GitHub
          </a>
          <UploadHint />
        </div>
      );
    }
    return <ErrorNotice error={repos.error} onRetry={() => repos.refetch()} />;
  }
  return (
    <div className="start-grid">
      <Card id="repos-h" title="1. Your repositories">
        <input
          type="search"
          className="input"
          placeholder="Filter repositories"
          aria-label="Filter repositories"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
        />
        {repos.isPending && <Loading what="your repositories from GitHub" />}
        {repos.data && all.length === 0 && <Empty title="GitHub lists no repository you can push to" />}
        {repos.data && all.length > 0 && shown.length === 0 && <Empty title={`No repository matches “${query}”`} />}
        <ul className="repo-list" aria-label="Repositories">
          {shown.map((r) => (
            <li key={r.fullName}>
              <button
                type="button"
                className={`repo ${repo?.fullName === r.fullName ? "repo-picked" : ""}`}
                aria-pressed={repo?.fullName === r.fullName}
                data-repo={r.fullName}
                onClick={() => setRepo(r)}
              >
                <strong>{r.fullName}</strong> {r.private && <Badge tone="muted">private</Badge>}
                {r.description && <span className="sub repo-desc">{r.description}</span>}
              </button>
            </li>
          ))}
        </ul>
        {repos.hasNextPage && (
          <button type="button" className="btn btn-small" disabled={repos.isFetchingNextPage} onClick={() => repos.fetchNextPage()}>
            {repos.isFetchingNextPage ? "Loading…" : "More repositories"}
          </button>
        )}
      </Card>
      {repo ? <Configure key={repo.fullName} repo={repo} onStarted={onStarted} /> : <UploadHint />}
    </div>
  );
}

function Configure({ repo, onStarted }: { repo: Repository; onStarted: (s: { name: string; repo: string; branch: string; deploymentId: string }) => void }) {
  const branches = useQuery(GitHubService.method.listBranches, { repo: repo.fullName }, { staleTime: 30_000 });
  const [branch, setBranch] = useState(repo.defaultBranch);
  const manifest = useQuery(GitHubService.method.checkManifest, { repo: repo.fullName, branch }, { enabled: !!branch, staleTime: 10_000 });
  const [name, setName] = useState<string | null>(null);
  const create = useMutation(ComponentService.method.create, { onError: onApiError });
  const m = manifest.data;
  const effectiveName = name ?? (m?.name || nameFromRepo(repo.fullName));
  const problem = componentNameProblem(effectiveName);
  const ok = !!m?.found && m.problems.length === 0 && !problem;
  return (
    <Card id="configure-h" title={`2. ${repo.fullName}`}>
      {branches.error && <ErrorNotice error={branches.error} />}
      <div className="form-row">
        <label htmlFor="branch">Branch</label>
        <select id="branch" className="input" value={branch} onChange={(e) => setBranch(e.target.value)} disabled={!branches.data}>
          {(branches.data?.branches ?? [{ name: repo.defaultBranch, sha: "" }]).map((b) => (
            <option key={b.name} value={b.name}>
              {b.name}
            </option>
          ))}
        </select>
      </div>
      <div className="manifest" aria-live="polite" data-testid="manifest">
        {manifest.isPending && <Loading what="v9.toml" />}
        {manifest.error && <ErrorNotice error={manifest.error} />}
        {m && ok && (
          <p className="notice notice-ok">
            <strong>v9.toml found</strong> at <code>{m.sha.slice(0, 7)}</code>: component <code>{m.name}</code>, runtime {m.runtime}.
          </p>
        )}
        {m && !m.found && (
          <div className="notice notice-bad" role="alert">
            <strong>No v9.toml on {branch}.</strong> {m.problems.join(" ")} Add one, push, and pick the branch again.
          </div>
        )}
        {m && m.found && m.problems.length > 0 && (
          <div className="notice notice-bad" role="alert">
            <strong>v9.toml would not deploy:</strong>
            <ul>
              {m.problems.map((p) => (
                <li key={p}>{p}</li>
              ))}
            </ul>
          </div>
        )}
      </div>
      <form
        className="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          if (!ok || !m) return;
          create.mutate(
            {
              name: effectiveName,
              runtime: m.runtime === "container" ? Runtime.CONTAINER : Runtime.WASM,
              source: { githubRepo: repo.fullName, branch },
            },
            { onSuccess: (r) => onStarted({ name: effectiveName, repo: repo.fullName, branch, deploymentId: r.deployment?.id ?? "" }) },
          );
        }}
      >
        <label htmlFor="component-name">Component name</label>
        <input
          id="component-name"
          className="input"
          value={effectiveName}
          aria-invalid={!!problem}
          aria-describedby="component-name-problem"
          onChange={(e) => setName(e.target.value)}
        />
        <button type="submit" className="btn btn-primary" disabled={!ok || create.isPending}>
          {create.isPending ? "Starting…" : "Start"}
        </button>
        <span id="component-name-problem" className="sub bad-text">
          {problem}
        </span>
      </form>
      {create.error && <ErrorNotice error={create.error} />}
      <p className="sub">
        Start links the repository (a webhook: every push to {branch} deploys) and builds its head. The CLI does the same:{" "}
        <code>
          v9 component create {effectiveName || "NAME"} --repo {repo.fullName} --branch {branch}
        </code>
        .
      </p>
    </Card>
  );
}

function UploadHint() {
  return (
    <section aria-labelledby="upload-h" className="card">
      <h2 id="upload-h">Or deploy from your machine</h2>
      <p>
        In a directory holding a <code>v9.toml</code>, run <code>v9 deploy .</code> It shows up in{" "}
        <Link href="/">Components</Link> the same way, with its deployments and logs.
      </p>
    </section>
  );
}

/** After Start: the deployment's progress (DeployService.Watch), its build log live, then the component answering. */
function Progress({ name, repo, branch, deploymentId }: { name: string; repo: string; branch: string; deploymentId: string }) {
  const [w, setW] = useState<WatchResponse | null>(null);
  const [err, setErr] = useState<unknown>(null);
  const url = useProxyURL(name);
  useEffect(() => {
    const ctl = new AbortController();
    (async () => {
      for (let failures = 0; !ctl.signal.aborted; ) {
        try {
          for await (const m of clients.deploy.watch({ deploymentId }, { signal: ctl.signal })) {
            setW(m);
            setErr(null);
            failures = 0;
            if (m.done) return;
          }
        } catch (e) {
          if (ctl.signal.aborted) return;
          onApiError(e);
          setErr(e);
          failures++;
        }
        await sleep(Math.min(500 * 2 ** failures, 8000), ctl.signal);
      }
    })();
    return () => ctl.abort();
  }, [deploymentId]);
  const d = w?.deployment;
  const failed = d?.status === DeploymentStatus.FAILED;
  const served = !!w?.done && !failed;
  return (
    <>
      <ol className="steps" aria-label="Progress">
        <li className="step-done">
          Linked <code>{repo}</code>@{branch}: a webhook deploys every push.
        </li>
        <li className={d && d.status !== DeploymentStatus.PENDING ? "step-done" : "step-now"}>
          Build of <code>{d?.commitSha.slice(0, 7) || "the branch head"}</code>{" "}
          {d && <Badge tone={failed ? "bad" : d.status === DeploymentStatus.READY ? "ok" : "warn"}>{enumName(DeploymentStatus, d.status, "DEPLOYMENT_STATUS_")}</Badge>}
        </li>
        <li className={served ? "step-done" : failed ? "" : "step-now"} data-testid="serving">
          {w ? w.message : "Waiting for the deployment…"} {w && `(${w.running}/${w.wanted} running)`}
        </li>
      </ol>
      {err !== null && <ErrorNotice error={err} retrying />}
      {failed && (
        <div className="notice notice-bad" role="alert">
          <strong>The build failed.</strong> {d?.error} Fix it, push, and the webhook deploys again.
        </div>
      )}
      <Logs component={name} title="Build log" only={["build", "system"]} />
      {served && (
        <section aria-labelledby="live-h" className="card live-card">
          <h2 id="live-h">
            {name} answers at{" "}
            <a href={url} target="_blank" rel="noreferrer" data-testid="live-url">
              {url}
            </a>
          </h2>
          <iframe className="answer" title={`What ${name} answers`} src={url} sandbox="" referrerPolicy="no-referrer" />
          <p>
            <Link href={`/components/${encodeURIComponent(name)}`} className="btn btn-primary">
              Open {name}
            </Link>
          </p>
        </section>
      )}
    </>
  );
}
