/**
 * The config file: a raw type where every field is optional, checked key by key, then merged
 * with the command line into one normalised configuration (as the original did).
 *
 * @module
 */

import { dirname, isAbsolute, join, resolve } from "../policy/_path.ts";
import { parsePermission, type SandboxPermission } from "../policy/permission.ts";
import { validEnvEntry } from "../policy/environment.ts";
import { formatDomainPattern, parseDomainPattern } from "../policy/network_domain.ts";
import { parseLimits, type ResourceLimits } from "../policy/limits.ts";
import { MAX_TIMEOUT_MS } from "../exec/spawn.ts";

/** The file as written; every field optional. */
export interface RawConfig {
  /** Permissions in string or object form; paths relative to the file's folder. */
  permissions?: SandboxPermission[];
  /** Supervise with this timeout. */
  timeoutMs?: number;
  /** Environment entries as `--env` takes them: `KEY` (copy) or `KEY=VALUE`. */
  env?: string[];
  /** Start the command's environment empty but for a few variables (`--clear-env`). */
  clearEnv?: boolean;
  /** Keep the caller's variables that look like credentials (`--inherit-env`). */
  inheritEnv?: boolean;
  /** Refuse partial enforcement (`--require-full`). */
  requireFull?: boolean;
  /** No full read: only what the command needs is readable (`--restrict-reads`). */
  restrictReads?: boolean;
  /** Paths to hide besides the credential locations (`--hide`); relative to the file's folder. */
  hide?: string[];
  /** Credential locations to show again (`--show`); relative to the file's folder. */
  show?: string[];
  /** Domains the proxy refuses even where a `network-domain` allows them (`--deny-domain`). */
  denyDomains?: string[];
  /** Resource limits, by option name: `{"max-memory": "2G", "max-processes": 256}`. */
  limits?: ResourceLimits;
}

/** A config file that cannot be used: exit 2, nothing runs. */
export class ConfigError extends Error {
  /**
   * Makes the error.
   * @param file The file.
   * @param keyPath Where in it, e.g. `permissions[2]`.
   * @param message What is wrong.
   */
  constructor(file: string, keyPath: string, message: string) {
    super(`Invalid config ${file}${keyPath ? ` at ${keyPath}` : ""}: ${message}`);
    this.name = "ConfigError";
  }
}

const KEYS = new Set([
  "permissions",
  "timeoutMs",
  "env",
  "clearEnv",
  "inheritEnv",
  "requireFull",
  "restrictReads",
  "hide",
  "show",
  "denyDomains",
  "limits",
]);

/**
 * Parses and checks a config file's text. Relative folders in permissions are resolved against
 * the file's folder.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * import assert from "node:assert/strict";
 *
 * const config = parseConfig('{"permissions": ["disk-write-folder=build"]}', "/p/config.json");
 * assert.deepEqual(config.permissions, [{ kind: "disk-write-folder", folder: "/p/build" }]);
 * ```
 *
 * @param text The file's contents.
 * @param file The file's path, for messages and relative paths.
 * @returns The raw config.
 * @throws {ConfigError} Naming the file and the key path.
 */
export function parseConfig(text: string, file: string): RawConfig {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(file, "", `not JSON (${(error as Error).message})`);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError(file, "", "expected a JSON object");
  }
  const record = data as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!KEYS.has(key)) {
      throw new ConfigError(file, key, `unknown key (known: ${[...KEYS].join(", ")})`);
    }
  }
  const config: RawConfig = {};
  if (record.permissions !== undefined) {
    if (!Array.isArray(record.permissions)) {
      throw new ConfigError(file, "permissions", "expected an array");
    }
    config.permissions = record.permissions.map((value, i) => {
      try {
        return relativeTo(dirname(file), parsePermission(value));
      } catch (error) {
        throw new ConfigError(file, `permissions[${i}]`, (error as Error).message);
      }
    });
  }
  if (record.timeoutMs !== undefined) {
    const timeout = record.timeoutMs;
    if (
      typeof timeout !== "number" || !Number.isSafeInteger(timeout) || timeout <= 0 ||
      timeout > MAX_TIMEOUT_MS
    ) {
      throw new ConfigError(
        file,
        "timeoutMs",
        `expected an integer from 1 to ${MAX_TIMEOUT_MS}, got ${JSON.stringify(timeout)}`,
      );
    }
    config.timeoutMs = timeout;
  }
  if (record.env !== undefined) {
    if (!Array.isArray(record.env)) throw new ConfigError(file, "env", "expected an array");
    config.env = record.env.map((entry, i) => {
      if (typeof entry !== "string" || !validEnvEntry(entry)) {
        throw new ConfigError(
          file,
          `env[${i}]`,
          `expected "KEY" or "KEY=VALUE", got ${JSON.stringify(entry)}`,
        );
      }
      return entry;
    });
  }
  for (const key of ["hide", "show"] as const) {
    if (record[key] === undefined) continue;
    if (!Array.isArray(record[key])) throw new ConfigError(file, key, "expected an array of paths");
    config[key] = (record[key] as unknown[]).map((path, i) => {
      if (typeof path !== "string" || path === "" || path.includes("\0")) {
        throw new ConfigError(file, `${key}[${i}]`, `expected a path, got ${JSON.stringify(path)}`);
      }
      return isAbsolute(path) || path === "~" || path.startsWith("~/")
        ? path
        : resolve(dirname(file), path);
    });
  }
  if (record.denyDomains !== undefined) {
    if (!Array.isArray(record.denyDomains)) {
      throw new ConfigError(file, "denyDomains", "expected an array of patterns");
    }
    config.denyDomains = record.denyDomains.map((pattern, i) => {
      try {
        if (typeof pattern !== "string") throw new Error(`expected a pattern, got ${pattern}`);
        return formatDomainPattern(parseDomainPattern(pattern));
      } catch (error) {
        throw new ConfigError(file, `denyDomains[${i}]`, (error as Error).message);
      }
    });
  }
  if (record.limits !== undefined) {
    const limits = record.limits;
    if (limits === null || typeof limits !== "object" || Array.isArray(limits)) {
      throw new ConfigError(file, "limits", 'expected an object such as {"max-memory": "2G"}');
    }
    for (const [key, value] of Object.entries(limits)) {
      if (typeof value !== "string" && typeof value !== "number") {
        throw new ConfigError(file, `limits.${key}`, `expected a string or a number`);
      }
      try {
        config.limits = { ...config.limits, ...parseLimits({ [key]: value }) };
      } catch (error) {
        throw new ConfigError(file, `limits.${key}`, (error as Error).message);
      }
    }
  }
  for (const key of ["clearEnv", "inheritEnv", "requireFull", "restrictReads"] as const) {
    if (record[key] === undefined) continue;
    if (typeof record[key] !== "boolean") {
      throw new ConfigError(
        file,
        key,
        `expected true or false, got ${JSON.stringify(record[key])}`,
      );
    }
    config[key] = record[key];
  }
  return config;
}

function relativeTo(folder: string, permission: SandboxPermission): SandboxPermission {
  if (!("folder" in permission)) return permission;
  const path = permission.folder;
  if (isAbsolute(path) || path === "~" || path.startsWith("~/")) return permission;
  return { ...permission, folder: resolve(folder, path) };
}

/**
 * Where the config file is looked for when `--config` is not given.
 * @param env The caller's environment.
 * @returns The path, or `undefined` without `$XDG_CONFIG_HOME` or `$HOME`.
 */
export function defaultConfigPath(env: Readonly<Record<string, string>>): string | undefined {
  // A relative one is ignored, as the XDG specification says: it would name a file in whatever
  // folder the CLI is started in, which a command may have written.
  if (env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME)) {
    return join(env.XDG_CONFIG_HOME, "llmx-sandbox", "config.json");
  }
  if (env.HOME && isAbsolute(env.HOME)) {
    return join(env.HOME, ".config", "llmx-sandbox", "config.json");
  }
  return undefined;
}

/**
 * Reads the config: `explicit` (which must exist), else the default path when it exists.
 * @param explicit `--config FILE`, relative to the process cwd.
 * @param env The caller's environment.
 * @returns The file's canonical path, the path as given (absolute), and its raw config;
 * `undefined` when there is none.
 * @throws {ConfigError} When it cannot be read or is invalid.
 */
export function loadConfig(
  explicit: string | undefined,
  env: Readonly<Record<string, string>>,
): { file: string; given: string; config: RawConfig } | undefined {
  const path = explicit ?? defaultConfigPath(env);
  if (path === undefined) return undefined;
  let file: string;
  let text: string;
  try {
    file = Deno.realPathSync(path);
    text = Deno.readTextFileSync(file);
  } catch (error) {
    if (explicit === undefined && error instanceof Deno.errors.NotFound) return undefined;
    throw new ConfigError(path, "", (error as Error).message);
  }
  // Joined, not normalised: whoever checks the way to it resolves each step as the kernel does.
  const given = isAbsolute(path) ? path : `${Deno.cwd()}/${path}`;
  return { file, given, config: parseConfig(text, file) };
}
