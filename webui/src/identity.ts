// Who the signed-in caller is and what their role lets them do, so that the console shows no
// button the caller cannot use (the server refuses them anyway: this is only courtesy).
import { Code, ConnectError } from "@connectrpc/connect";
import { useQuery } from "@tanstack/react-query";
import { useLocation } from "wouter";
import { getToken, markSession } from "./auth";
import { callJSON, type AuthMethodsJSON, type WhoAmIJSON } from "./rpc";
import type { Identity, Role } from "./roles";

export type { Identity, Role } from "./roles";
export { can } from "./roles";

export async function whoAmI(): Promise<Identity> {
  try {
    const r = await callJSON<WhoAmIJSON>("v9.acl.v1.ACLService/WhoAmI");
    if (r.kind === "user") markSession();
    return { enforced: true, name: (r.kind === "user" ? r.id : r.name || r.id) ?? "", role: (r.role as Role) || "", kind: r.kind ?? "" };
  } catch (err) {
    // A cluster without the ACL service accepts every caller.
    if (err instanceof ConnectError && (err.code === Code.Unimplemented || err.code === Code.NotFound)) {
      return { enforced: false, name: "", role: "" };
    }
    throw err;
  }
}

/** The query that asks who the caller is, shared by the page and main.tsx's early start. */
export function identityQuery() {
  return {
    queryKey: ["whoami", getToken()],
    queryFn: whoAmI,
    staleTime: 60_000,
    // A refused sign-in is final; anything else is tried once more.
    retry: (n: number, err: Error) => n < 1 && !(err instanceof ConnectError && [Code.Unauthenticated, Code.PermissionDenied].includes(err.code)),
  };
}

/** The identity query; not asked on the sign-in page, where there is nobody yet. */
export function useIdentityQuery() {
  const [location] = useLocation();
  return useQuery({ ...identityQuery(), enabled: location !== "/signin" });
}

/** The caller's identity, once known. */
export function useIdentity(): Identity | undefined {
  return useIdentityQuery().data;
}

/** The ways to sign in the cluster offers (asked early, so that the sign-in page has them). */
export const authMethodsQuery = {
  queryKey: ["authMethods"],
  queryFn: () => callJSON<AuthMethodsJSON>("v9.acl.v1.ACLService/AuthMethods"),
  staleTime: 300_000,
  retry: 1,
};
