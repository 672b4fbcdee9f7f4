import { describe, expect, it } from "vitest";
import { secretNameProblem } from "./secrets";

describe("secretNameProblem", () => {
  it("accepts environment names", () => {
    for (const n of ["DB_PASSWORD", "_x", "a1", "V9"]) expect(secretNameProblem(n)).toBe("");
  });
  it("refuses empty, bad characters and leading digits", () => {
    expect(secretNameProblem("")).toMatch(/name/);
    expect(secretNameProblem("1A")).toMatch(/digit/);
    expect(secretNameProblem("A-B")).toMatch(/letters/);
    expect(secretNameProblem("A B")).toMatch(/letters/);
  });
  it("refuses the reserved V9_ prefix in any case", () => {
    expect(secretNameProblem("V9_NODE")).toMatch(/reserved/);
    expect(secretNameProblem("v9_node")).toMatch(/reserved/);
  });
});
