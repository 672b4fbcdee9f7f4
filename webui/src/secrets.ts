// Rules the console checks before sending a secret, the same as the server's (spec/): a
// secret is an environment variable, so its name is one, and the V9_ prefix is reserved.

/** Why name cannot be a secret's name, or "" when it can. */
export function secretNameProblem(name: string): string {
  if (name === "") return "Give the secret a name.";
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return "A name is letters, digits and _, not starting with a digit.";
  if (name.slice(0, 3).toUpperCase() === "V9_") return "Names starting with V9_ are reserved for the platform.";
  return "";
}
