import { useEffect, useState } from "react";
import { useLocation, useSearch } from "wouter";
import { useQuery } from "@tanstack/react-query";
import { clearToken, getToken, githubSignInURL, hadSession, safeNext, setToken } from "../auth";
import { explain } from "../errors";
import { authMethodsQuery, whoAmI } from "../identity";
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Sign in with GitHub when the cluster offers it (a full-page trip through GitHub that ends
 * with a session cookie and back on the page the user came from), or by pasting an API token (`v9 acl bootstrap` prints the first one; an admin creates
 * more). The token is checked with a read before it is kept; then the user goes back to the
 * page that sent them here.
 */
export function SignInPage() {
  const search = useSearch();
  const next = safeNext(new URLSearchParams(search).get("next"));
  const [, setLocation] = useLocation();
  const [value, setValue] = useState("");
  const [error, setError] = useState<string>("");
  const [busy, setBusy] = useState(false);
  const expired = new URLSearchParams(search).has("next") && (getToken() !== "" || hadSession());
  const methods = useQuery(authMethodsQuery);
  const github = methods.data?.github?.loginPath ? { loginPath: methods.data.github.loginPath } : undefined;
  // The page is usable once it knows which ways to sign in it offers (the browser tests' mark).
  const settled = !methods.isPending;
  useEffect(() => {
    if (settled && performance.getEntriesByName("v9:interactive").length === 0) performance.mark("v9:interactive");
  }, [settled]);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const t = value.trim();
    if (!t) {
      setError("Paste a token first.");
      return;
    }
    setBusy(true);
    setError("");
    const before = getToken();
    setToken(t);
    try {
      await whoAmI(); // refused (Unauthenticated) when the cluster does not know the token
      setLocation(next, { replace: true });
    } catch (err) {
      if (before) setToken(before);
      else clearToken();
      const x = explain(err);
      setError(
        err instanceof ConnectError && err.code === Code.Unauthenticated
          ? "The cluster does not know this token, or it has expired or been revoked. Check that you pasted all of it."
          : `${x.title}: ${x.detail}. ${x.action}`,
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="signin-h" className="signin card">
      <h1 id="signin-h">Sign in</h1>
      {expired && (
        <p className="notice notice-warn" role="status">
          Your session has ended or your token was refused. Sign in again to go back to <code>{next}</code>.
        </p>
      )}
      {github && (
        <div className="signin-github">
          <a className="btn btn-primary" href={githubSignInURL(github.loginPath, next)}>
            Sign in with GitHub
          </a>
          <p className="sub">Or paste an API token:</p>
        </div>
      )}
      <form onSubmit={submit} noValidate>
        <label htmlFor="token">API token</label>
        <input
          id="token"
          className="input"
          type="password"
          autoComplete="off"
          spellCheck={false}
          autoFocus={!github}
          value={value}
          aria-invalid={error !== ""}
          aria-describedby={error ? "token-help token-error" : "token-help"}
          onChange={(e) => setValue(e.target.value)}
        />
        <p id="token-help" className="sub">
          The first token comes from <code>v9 acl bootstrap</code>; an admin creates more with <code>v9 token create</code> or on the Tokens page. It
          is kept in this tab only and sent with every request.
        </p>
        {error && (
          <p id="token-error" className="notice notice-bad" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className={github ? "btn" : "btn btn-primary"} disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
    </section>
  );
}
