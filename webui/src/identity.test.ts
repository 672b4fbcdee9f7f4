import { describe, expect, it } from "vitest";
import { can } from "./roles";

describe("can", () => {
  const as = (role: "viewer" | "developer" | "admin") => ({ enforced: true, name: "t", role });
  it("orders roles viewer < developer < admin", () => {
    expect(can(as("viewer"), "viewer")).toBe(true);
    expect(can(as("viewer"), "developer")).toBe(false);
    expect(can(as("developer"), "developer")).toBe(true);
    expect(can(as("developer"), "admin")).toBe(false);
    expect(can(as("admin"), "admin")).toBe(true);
  });
  it("allows everything on a cluster that does not check tokens, nothing while unknown", () => {
    expect(can({ enforced: false, name: "", role: "" }, "admin")).toBe(true);
    expect(can(undefined, "viewer")).toBe(false);
    expect(can({ enforced: true, name: "x", role: "" }, "viewer")).toBe(false);
  });
});
