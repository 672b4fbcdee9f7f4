// The Start page's own logic: picking a repository, naming the component, and where the
// component will answer.

/** Repositories whose name contains every word of the query (case-insensitive). */
export function matchRepos<T extends { fullName: string; description?: string }>(repos: T[], query: string): T[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return repos;
  return repos.filter((r) => {
    const hay = `${r.fullName} ${r.description ?? ""}`.toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

/** A component name from a repository name when v9.toml gives none: a DNS label. */
export function nameFromRepo(fullName: string): string {
  const repo = fullName.split("/").pop() ?? "";
  const n = repo
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63)
    .replace(/-+$/, "");
  return /^[a-z]/.test(n) ? n : n ? `c-${n}`.slice(0, 63) : "";
}

/** Why name cannot be a component name (a DNS label), or "". */
export function componentNameProblem(name: string): string {
  if (!name) return "Give the component a name.";
  if (name.length > 63) return "At most 63 characters.";
  if (!/^[a-z]([a-z0-9-]*[a-z0-9])?$/.test(name)) return "Lowercase letters, digits and -, starting with a letter, not ending with -.";
  return "";
}

/**
 * The URL a component answers at through the proxy of the node at proxyAddr, as seen from
 * the page's location (a wildcard bind address means the page's own host).
 */
export function proxyURL(proxyAddr: string, loc: { protocol: string; hostname: string }, name: string): string {
  if (!proxyAddr) return "";
  const i = proxyAddr.lastIndexOf(":");
  const host = (i < 0 ? proxyAddr : proxyAddr.slice(0, i)).replace(/^\[|\]$/g, "");
  const port = i < 0 ? "" : proxyAddr.slice(i + 1);
  const h = !host || host === "0.0.0.0" || host === "::" ? loc.hostname : host;
  return `${loc.protocol}//${h.includes(":") ? `[${h}]` : h}${port ? `:${port}` : ""}/${name}/`;
}
