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

/** Where to come back to after signing in: a path of this console, never another origin. */
export function safeNext(next: string | null): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/signin")) return "/";
  return next;
}
