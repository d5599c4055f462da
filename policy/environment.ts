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
 * Variable names that look like credentials (as Codex filters them): API keys, tokens,
 * passwords. Dropped from the caller's environment unless passed by name or kept on purpose.
 */
export const CREDENTIAL_NAME: RegExp = /KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL|AUTH/i;

/** How the command's environment is made from the caller's. */
export interface EnvironmentOptions {
  /** Start from `CLEAR_ENV_KEEPS` only (`--clear-env`). @default false */
  clear?: boolean;
  /** Keep variables whose names look like credentials (`--inherit-env`). @default false */
  inherit?: boolean;
  /** `--env` entries, in order: `KEY` copies the caller's value, `KEY=VALUE` sets it. */
  entries?: readonly string[];
}

/**
 * The command's environment: the caller's, without the variables whose names look like
 * credentials (unless `inherit`), or only `CLEAR_ENV_KEEPS` of it (`clear`); then each entry:
 * `KEY` copies the caller's value (skipped when unset; a credential passed by name is kept),
 * `KEY=VALUE` sets it.
 *
 * @example
 * ```ts
 * import { buildEnvironment } from "./environment.ts";
 * import assert from "node:assert/strict";
 *
 * const caller = { PATH: "/bin", GITHUB_TOKEN: "t", AWS_SECRET_ACCESS_KEY: "s", HOME: "/h" };
 * const { env, dropped } = buildEnvironment(caller, { entries: ["GITHUB_TOKEN", "A=1"] });
 * assert.deepEqual(env, { PATH: "/bin", HOME: "/h", GITHUB_TOKEN: "t", A: "1" });
 * assert.deepEqual(dropped, ["AWS_SECRET_ACCESS_KEY"]);
 * ```
 *
 * @param caller The caller's environment.
 * @param options What to keep and add.
 * @returns The environment, and the names of the credentials left out (sorted).
 */
export function buildEnvironment(
  caller: Readonly<Record<string, string>>,
  options: EnvironmentOptions = {},
): { env: Record<string, string>; dropped: string[] } {
  const env: Record<string, string> = {};
  const dropped: string[] = [];
  for (const [key, value] of Object.entries(caller)) {
    if (options.clear && !CLEAR_ENV_KEEPS.includes(key)) continue;
    if (!options.inherit && CREDENTIAL_NAME.test(key)) {
      dropped.push(key);
      continue;
    }
    env[key] = value;
  }
  for (const entry of options.entries ?? []) {
    const eq = entry.indexOf("=");
    if (eq === -1) {
      if (caller[entry] !== undefined) env[entry] = caller[entry];
    } else {
      env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
  }
  return { env, dropped: dropped.filter((key) => env[key] === undefined).sort() };
}
