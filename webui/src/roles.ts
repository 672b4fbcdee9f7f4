// Roles and what they allow: pure, for identity.ts and its tests.

export type Role = "viewer" | "developer" | "admin";

export interface Identity {
  /** false when the cluster does not check tokens (a version without ACLs): everything is allowed. */
  enforced: boolean;
  name: string;
  role: Role | "";
  /** "user" for someone signed in with GitHub (a session cookie), "token" for a pasted token. */
  kind?: string;
}

const rank: Record<string, number> = { viewer: 1, developer: 2, admin: 3 };

/** Whether identity may call procedures that need role; unknown (still loading) is no. */
export function can(identity: Identity | undefined, role: Role): boolean {
  if (!identity) return false;
  if (!identity.enforced) return true;
  return (rank[identity.role] ?? 0) >= rank[role];
}
