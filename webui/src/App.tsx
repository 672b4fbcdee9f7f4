import { lazy, Suspense, useEffect, useRef } from "react";
import { Link, useLocation } from "wouter";
import { clearToken, getToken, signOutSession, tokenHint } from "./auth";
import { useIdentityQuery } from "./identity";
import { SignInPage } from "./pages/SignIn";
import { Loading } from "./ui/Notice";

// The pages (and the generated code and Connect transport they use) load apart from this
// shell, so that a signed-out visitor's sign-in page loads only what it needs (Routes.tsx).
const Routes = lazy(() => import("./Routes"));

// The pages' chunks (Routes.tsx loads the same ones, lazily).
const loaders: [RegExp, () => Promise<unknown>][] = [
  [/^\/$/, () => import("./pages/Components")],
  [/^\/components\//, () => import("./pages/Component")],
  [/^\/nodes/, () => import("./pages/Nodes")],
  [/^\/start/, () => import("./pages/Start")],
  [/^\/(tokens|audit)/, () => import("./pages/Tokens")],
];

/** Starts fetching the code of the page at path, with the routes', side by side. */
export function preloadPage(path: string): void {
  void import("./Routes");
  void loaders.find(([re]) => re.test(path))?.[1]();
}

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
  const identity = useIdentityQuery();
  const me = identity.data;
  // A page shows once the caller is known: a signed-out caller goes to sign in (live.ts's
  // onApiError) before any page's code or data is fetched for nothing.
  const waiting = location !== "/signin" && identity.isPending;

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
        {waiting ? (
          <Loading what="the console" />
        ) : (
          <Suspense fallback={<Loading what="the page" />}>
            {location === "/signin" ? <SignInPage /> : <Routes />}
          </Suspense>
        )}
      </main>
    </>
  );
}
