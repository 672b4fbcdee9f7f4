// The API token the user signed in with. It lives in sessionStorage (this tab only, gone when
// the tab closes) and goes out as "Authorization: Bearer" on every call. Nothing else in the
// console touches it.
import type { Interceptor } from "@connectrpc/connect";

const key = "v9.token";

export function getToken(): string {
  try {
    return sessionStorage.getItem(key) ?? "";
  } catch {
    return "";
  }
}

export function setToken(token: string): void {
  sessionStorage.setItem(key, token.trim());
}

export function clearToken(): void {
  sessionStorage.removeItem(key);
}

/** A short, safe-to-show name for a token: its last 4 characters. */
export function tokenHint(token: string): string {
  return token.length > 8 ? `…${token.slice(-4)}` : "…";
}

export const bearer: Interceptor = (next) => async (req) => {
  const t = getToken();
  if (t) req.header.set("Authorization", `Bearer ${t}`);
  return next(req);
};

// A GitHub sign-in is a session cookie the page cannot read (HttpOnly); this flag only
// remembers that the tab had one, to say "your session ended" when the server refuses it.
const sessionKey = "v9.session";

export function markSession(): void {
  try {
    sessionStorage.setItem(sessionKey, "1");
  } catch {
    /* storage off: the message is only a courtesy */
  }
}

export function hadSession(): boolean {
  try {
    return sessionStorage.getItem(sessionKey) === "1";
  } catch {
    return false;
  }
}

/** Ends a GitHub session: the node deletes it and clears the cookie. */
export async function signOutSession(): Promise<void> {
  try {
    sessionStorage.removeItem(sessionKey);
  } catch {
    /* ignore */
  }
  const r = await fetch("/auth/signout", { method: "POST", credentials: "same-origin" });
  if (!r.ok) throw new Error(`sign-out failed: ${r.status} ${await r.text()}`);
}

/** The URL that starts the GitHub sign-in and comes back to next. */
export function githubSignInURL(loginPath: string, next: string): string {
  return `${loginPath}?next=${encodeURIComponent(safeNext(next))}`;
}

/** Where to come back to after signing in: a path of this console, never another origin. */
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/signin")) return "/";
  return next;
}
