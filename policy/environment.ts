/**
 * The command's environment as users shape it: `--clear-env`, `--env KEY`, `--env KEY=VALUE`.
 *
 * @module
 */

/**
 * Whether a string is an environment entry as `--env` takes it.
 * @param entry `KEY` or `KEY=VALUE`.
 * @returns `true` when the key is non-empty and nothing contains a NUL.
 */
export function validEnvEntry(entry: string): boolean {
  const eq = entry.indexOf("=");
  return eq !== 0 && entry !== "" && !entry.includes("\0");
}

/** The variables `--clear-env` keeps. */
export const CLEAR_ENV_KEEPS: readonly string[] = [
  "PATH",
  "HOME",
  "TERM",
  "LANG",
  "USER",
  "TMPDIR",
];

/**
 * The command's environment: the caller's (or only `CLEAR_ENV_KEEPS` of it), then each entry:
 * `KEY` copies the caller's value (skipped when unset), `KEY=VALUE` sets it.
 *
 * @example
 * ```ts
 * import { buildEnvironment } from "./environment.ts";
 * import assert from "node:assert/strict";
 *
 * const env = buildEnvironment({ PATH: "/bin", TOKEN: "t", HOME: "/h" }, true, ["TOKEN", "A=1"]);
 * assert.deepEqual(env, { PATH: "/bin", HOME: "/h", TOKEN: "t", A: "1" });
 * ```
 *
 * @param caller The caller's environment.
 * @param clear Whether to start from `CLEAR_ENV_KEEPS` only.
 * @param entries `--env` entries, in order.
 * @returns The environment.
 */
export function buildEnvironment(
  caller: Readonly<Record<string, string>>,
  clear: boolean,
  entries: readonly string[],
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(caller)) {
    if (!clear || CLEAR_ENV_KEEPS.includes(key)) env[key] = value;
  }
  for (const entry of entries) {
    const eq = entry.indexOf("=");
    if (eq === -1) {
      if (caller[entry] !== undefined) env[entry] = caller[entry];
    } else {
      env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
  }
  return env;
}
