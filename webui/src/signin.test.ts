import { describe, expect, it } from "vitest";
import { githubSignInURL, safeNext } from "./auth";

describe("GitHub sign-in URL", () => {
  it("comes back to a path of this console", () => {
    expect(githubSignInURL("/auth/github/login", "/components/web?x=1")).toBe("/auth/github/login?next=%2Fcomponents%2Fweb%3Fx%3D1");
  });
  it("never to another origin", () => {
    expect(githubSignInURL("/auth/github/login", "//evil.example")).toBe("/auth/github/login?next=%2F");
    expect(safeNext("https://evil.example")).toBe("/");
  });
});
