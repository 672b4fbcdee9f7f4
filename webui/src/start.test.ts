import { describe, expect, it } from "vitest";
import { componentNameProblem, matchRepos, nameFromRepo, proxyURL } from "./start";

describe("matchRepos", () => {
  const repos = [{ fullName: "octocat/hello-v9", description: "a wasm greeter" }, { fullName: "acme/api" }];
  it("keeps every repository for an empty query", () => expect(matchRepos(repos, "  ")).toHaveLength(2));
  it("matches every word in name or description, any case", () => {
    expect(matchRepos(repos, "OCTO wasm").map((r) => r.fullName)).toEqual(["octocat/hello-v9"]);
    expect(matchRepos(repos, "acme wasm")).toHaveLength(0);
  });
});

describe("nameFromRepo", () => {
  it("makes a DNS label", () => {
    expect(nameFromRepo("octocat/Hello_World.js")).toBe("hello-world-js");
    expect(nameFromRepo("o/9lives")).toBe("c-9lives");
    expect(nameFromRepo("o/---")).toBe("");
    expect(nameFromRepo(`o/${"a".repeat(80)}`)).toHaveLength(63);
  });
});

describe("componentNameProblem", () => {
  it("accepts DNS labels only", () => {
    expect(componentNameProblem("hello")).toBe("");
    expect(componentNameProblem("")).not.toBe("");
    expect(componentNameProblem("Hello")).not.toBe("");
    expect(componentNameProblem("a-")).not.toBe("");
    expect(componentNameProblem("a".repeat(64))).not.toBe("");
  });
});

describe("proxyURL", () => {
  const loc = { protocol: "http:", hostname: "console.example" };
  it("uses the proxy's host and port", () => expect(proxyURL("10.0.0.5:8080", loc, "hello")).toBe("http://10.0.0.5:8080/hello/"));
  it("uses the page's host for a wildcard bind", () => {
    expect(proxyURL("0.0.0.0:8080", loc, "a")).toBe("http://console.example:8080/a/");
    expect(proxyURL("[::]:8080", loc, "a")).toBe("http://console.example:8080/a/");
  });
  it("brackets IPv6 hosts", () => expect(proxyURL("[fd00::1]:80", loc, "a")).toBe("http://[fd00::1]:80/a/"));
  it("is empty without a proxy", () => expect(proxyURL("", loc, "a")).toBe(""));
});
