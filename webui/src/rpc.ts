// A unary call in the Connect protocol's JSON form (POST /<service>/<method>), without the
// generated code: for the two calls the first page needs (who is signed in, how to sign in).
// Decoding the generated files' embedded descriptors is most of their start-up cost, so the
// console's entry chunk holds none of them and a signed-out visitor's sign-in page shows before
// any is loaded; the pages' generated clients come with the pages (clients.ts).
import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromHttpStatus, codeFromString } from "@connectrpc/connect/protocol-connect";
import { getToken } from "./auth";

export async function callJSON<T>(procedure: string, body: object = {}): Promise<T> {
  const headers: Record<string, string> = { "Content-Type": "application/json", "Connect-Protocol-Version": "1" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let r: Response;
  try {
    r = await fetch(`/${procedure}`, { method: "POST", headers, body: JSON.stringify(body), credentials: "same-origin" });
  } catch (err) {
    throw new ConnectError(err instanceof Error ? err.message : String(err), Code.Unavailable);
  }
  const text = await r.text();
  if (r.ok) return JSON.parse(text || "{}") as T;
  throw errorFromResponse(r.status, text);
}

/** The ConnectError of a failed call: the Connect error JSON's code, else the HTTP status's. */
export function errorFromResponse(status: number, text: string): ConnectError {
  let code = codeFromHttpStatus(status);
  let message = `HTTP ${status}`;
  try {
    const j = JSON.parse(text) as { code?: string; message?: string };
    code = (j.code && codeFromString(j.code)) || code;
    if (j.message) message = j.message;
  } catch {
    /* not a Connect error body: the status says it */
  }
  return new ConnectError(message, code);
}

/** v9.acl.v1.WhoAmIResponse in JSON (fields at their zero value are left out). */
export interface WhoAmIJSON {
  kind?: string;
  id?: string;
  name?: string;
  role?: string;
}

/** v9.acl.v1.AuthMethodsResponse in JSON. */
export interface AuthMethodsJSON {
  github?: { clientId?: string; webUrl?: string; loginPath?: string; scopes?: string[] };
}
