// Who the signed-in caller is and what their role lets them do, so that the console shows no
// button the caller cannot use (the server refuses them anyway: this is only courtesy).
import { Code, ConnectError } from "@connectrpc/connect";
import { useQuery } from "@tanstack/react-query";
import { useLocation } from "wouter";
import { api } from "./api";
import { getToken, markSession } from "./auth";
import type { Identity, Role } from "./roles";

export type { Identity, Role } from "./roles";
export { can } from "./roles";

export async function whoAmI(): Promise<Identity> {
  try {
    const r = await api.acl.whoAmI({});
    if (r.kind === "user") markSession();
    return { enforced: true, name: r.kind === "user" ? r.id : r.name || r.id, role: (r.role as Role) || "", kind: r.kind };
  } catch (err) {
    // A cluster without the ACL service accepts every caller.
    if (err instanceof ConnectError && (err.code === Code.Unimplemented || err.code === Code.NotFound)) {
      return { enforced: false, name: "", role: "" };
    }
    throw err;
  }
}

/** The caller's identity; not asked on the sign-in page, where there is nobody yet. */
export function useIdentity(): Identity | undefined {
  const [location] = useLocation();
  const q = useQuery({
    queryKey: ["whoami", getToken()],
    queryFn: whoAmI,
    staleTime: 60_000,
    // A refused sign-in is final; anything else is tried once more.
    retry: (n, err) => n < 1 && !(err instanceof ConnectError && [Code.Unauthenticated, Code.PermissionDenied].includes(err.code)),
    enabled: location !== "/signin",
  });
  return q.data;
}
