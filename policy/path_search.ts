/**
 * Where a shell would look for a program: `PATH` search as `execvp(3)` does it.
 *
 * @module
 */

/** The `PATH` used when the command's environment has none (glibc's `confstr` default). */
export const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin";

/**
 * The paths to try, in order, for a program name.
 *
 * @example
 * ```ts
 * import { programCandidates } from "./path_search.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(programCandidates("ls", "/usr/bin:/bin"), ["/usr/bin/ls", "/bin/ls"]);
 * assert.deepEqual(programCandidates("./run.sh", "/usr/bin"), ["./run.sh"]);
 * ```
 *
 * @param program `argv[0]`; a name with a slash is used as it is.
 * @param path The command's `PATH`, or `undefined` for `DEFAULT_PATH`.
 * @returns Candidate paths.
 */
export function programCandidates(program: string, path: string | undefined): string[] {
  if (program.includes("/")) return [program];
  // An empty PATH entry means the current folder, as in every shell.
  return (path ?? DEFAULT_PATH).split(":").map((dir) => `${dir === "" ? "." : dir}/${program}`);
}

/**
 * The value of `PATH` in an `envp`-style list.
 * @param env `KEY=VALUE` strings.
 * @returns The value, or `undefined`.
 */
export function pathOf(env: readonly string[]): string | undefined {
  const entry = env.find((item) => item.startsWith("PATH="));
  return entry?.slice("PATH=".length);
}
