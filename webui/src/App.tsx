import { useEffect, useRef } from "react";
import { Link, Route, Switch, useLocation } from "wouter";
import { clearToken, getToken, signOutSession, tokenHint } from "./auth";
import { useIdentity } from "./identity";
import { ComponentPage } from "./pages/Component";
import { ComponentsPage } from "./pages/Components";
import { NodesPage } from "./pages/Nodes";
import { SignInPage } from "./pages/SignIn";
import { StartPage } from "./pages/Start";
import { AuditPage, TokensPage } from "./pages/Tokens";
import { Empty } from "./ui/Notice";

const titles: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/^\/$/, () => "Components"],
  [/^\/components\/([^/]+)/, (m) => decodeURIComponent(m[1])],
  [/^\/nodes/, () => "Nodes"],
  [/^\/start/, () => "Start"],
  [/^\/signin/, () => "Sign in"],
  [/^\/tokens/, () => "API tokens"],
  [/^\/audit/, () => "Audit log"],
];

export function App() {
  const [location] = useLocation();
  const main = useRef<HTMLElement>(null);
  const token = getToken();
  const me = useIdentity();

  // Each page sets the document title and, after a client-side navigation, moves focus to the
  // main region so that screen readers announce the new page.
  const first = useRef(true);
  useEffect(() => {
    const t = titles.find(([re]) => re.test(location));
    document.title = `${t ? t[1](location.match(t[0])!) : "Not found"} · v9`;
    if (first.current) first.current = false;
    else main.current?.focus();
  }, [location]);

  return (
    <>
      <a href="#main" className="skip">
        Skip to content
      </a>
      <header className="top">
        <Link href="/" className="brand" aria-label="v9 console, components">
          <span className="logo" aria-hidden="true">
            9
          </span>
          <span>v9</span>
        </Link>
        <nav aria-label="Main">
          <Link href="/" className={(active) => (active || location.startsWith("/components") ? "nav active" : "nav")} aria-current={location === "/" || location.startsWith("/components") ? "page" : undefined}>
            Components
          </Link>
          {(!me?.enforced || me.role === "developer" || me.role === "admin") && (
            <Link href="/start" className={(active) => (active ? "nav active" : "nav")} aria-current={location === "/start" ? "page" : undefined}>
              Start
            </Link>
          )}
          <Link href="/nodes" className={(active) => (active ? "nav active" : "nav")} aria-current={location === "/nodes" ? "page" : undefined}>
            Nodes
          </Link>
          {me?.enforced && (
            <Link href="/tokens" className={(active) => (active ? "nav active" : "nav")} aria-current={location === "/tokens" ? "page" : undefined}>
              Tokens
            </Link>
          )}
          {me?.enforced && me.role === "admin" && (
            <Link href="/audit" className={(active) => (active ? "nav active" : "nav")} aria-current={location === "/audit" ? "page" : undefined}>
              Audit
            </Link>
          )}
        </nav>
        <div className="who">
          {token || me?.kind === "user" ? (
            <>
              <span className="sub" title={token ? "The API token this tab signed in with" : "Signed in with GitHub"}>
                {me?.enforced ? `${me.name} (${me.role})` : `token ${tokenHint(token)}`}
              </span>
              <button
                type="button"
                className="btn btn-small"
                onClick={async () => {
                  if (token) clearToken();
                  else {
                    try {
                      await signOutSession();
                    } catch (err) {
                      window.alert(String(err));
                      return;
                    }
                  }
                  // A full load drops every cached answer of the signed-out user.
                  window.location.assign("/signin");
                }}
              >
                Sign out
              </button>
            </>
          ) : (
            location !== "/signin" && (
              <Link href={`/signin?next=${encodeURIComponent(location)}`} className="btn btn-small">
                Sign in
              </Link>
            )
          )}
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <Switch>
          <Route path="/" component={ComponentsPage} />
          <Route path="/components/:name">{(p) => <ComponentPage key={p.name} name={decodeURIComponent(p.name)} />}</Route>
          <Route path="/nodes" component={NodesPage} />
          <Route path="/start" component={StartPage} />
          <Route path="/signin" component={SignInPage} />
          <Route path="/tokens" component={TokensPage} />
          <Route path="/audit" component={AuditPage} />
          <Route>
            <Empty title="This page does not exist">
              <p>
                <Link href="/">Go to the components</Link>
              </p>
            </Empty>
          </Route>
        </Switch>
      </main>
    </>
  );
}
