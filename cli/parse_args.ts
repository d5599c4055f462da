/**
 * The command line, parsed without touching the system: options end at `--` or at the first
 * argument that is not an option, so a command's own flags are never ours.
 *
 * @module
 */

import { parsePermission, type SandboxPermission } from "../policy/permission.ts";
import { validEnvEntry } from "../policy/environment.ts";
import { formatDomainPattern, parseDomainPattern } from "../policy/network_domain.ts";
import { MAX_TIMEOUT_MS } from "../exec/spawn.ts";
import {
  LIMIT_NAMES,
  LIMIT_OPTIONS,
  parseDuration,
  parseLimits,
  type ResourceLimits,
} from "../policy/limits.ts";

/** What the command line asked for. */
export interface CliArgs {
  /** `-s`/`--sandbox-permission`, in order. */
  permissions: SandboxPermission[];
  /** `--full-auto`. */
  fullAuto: boolean;
  /** `--timeout MS`; supervised mode when set. */
  timeoutMs?: number;
  /** `--cwd DIR`. */
  cwd?: string;
  /** `--config FILE`. */
  config?: string;
  /** `--env KEY` or `--env KEY=VALUE`, in order. */
  env: string[];
  /** `--clear-env`. */
  clearEnv: boolean;
  /** `--inherit-env`: keep the caller's variables that look like credentials. */
  inheritEnv: boolean;
  /** `--restrict-reads`: no full read; only what the command needs is readable. */
  restrictReads: boolean;
  /** `--hide PATH`, in order. */
  hide: string[];
  /** `--show PATH`, in order. */
  show: string[];
  /** `--deny-domain PATTERN`, in order. */
  denyDomains: string[];
  /** `--max-memory`, `--max-processes`, `--max-cpu`, `--max-file-size`, `--max-open-files`. */
  limits: ResourceLimits;
  /** `--run-as USER[:GROUP]`. */
  runAs?: string;
  /** `-h`/`--help`. */
  help: boolean;
  /** `-V`/`--version`. */
  version: boolean;
  /** `--json`: capture the output and print one JSON result. */
  json: boolean;
  /** `--stdin`: with `--json`, pass this process's stdin to the command. */
  stdin: boolean;
  /** `--probe`: report what this system can enforce (with `--json`: as JSON). */
  probe: boolean;
  /** `--explain`: print the plan as JSON instead of running. */
  explain: boolean;
  /** `--require-full`: refuse to run partially enforced. */
  requireFull: boolean;
  /** `--quiet`: no warnings or hints. */
  quiet: boolean;
  /** The command and its arguments. */
  command: string[];
}

/** A wrong invocation: exit 2, nothing runs. */
export class UsageError extends Error {
  /** @param message What was wrong, naming the value. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const WITH_VALUE = new Map([
  ["-s", "sandbox-permission"],
  ["--sandbox-permission", "sandbox-permission"],
  ["--timeout", "timeout"],
  ["--cwd", "cwd"],
  ["--config", "config"],
  ["--env", "env"],
  ["--run-as", "run-as"],
  ["--hide", "hide"],
  ["--show", "show"],
  ["--deny-domain", "deny-domain"],
  ...LIMIT_NAMES.map((name) => [LIMIT_OPTIONS[name], "limit"] as [string, string]),
]);
type BooleanOption =
  | "help"
  | "version"
  | "fullAuto"
  | "json"
  | "stdin"
  | "probe"
  | "explain"
  | "requireFull"
  | "quiet"
  | "clearEnv"
  | "inheritEnv"
  | "restrictReads";

const FLAGS = new Map<string, BooleanOption>([
  ["-h", "help"],
  ["--help", "help"],
  ["-V", "version"],
  ["--version", "version"],
  ["--full-auto", "fullAuto"],
  ["--json", "json"],
  ["--stdin", "stdin"],
  ["--probe", "probe"],
  ["--explain", "explain"],
  ["--require-full", "requireFull"],
  ["-q", "quiet"],
  ["--quiet", "quiet"],
  ["--clear-env", "clearEnv"],
  ["--inherit-env", "inheritEnv"],
  ["--restrict-reads", "restrictReads"],
]);

/**
 * `--timeout`: milliseconds as a plain number (`60000`), or a duration with units (`30s`, `2m`,
 * `500ms`, `1m30s`).
 * @param value As typed.
 * @returns Milliseconds.
 * @throws {UsageError} Naming the value.
 */
function parseTimeout(value: string): number {
  const expected =
    `(milliseconds, or a duration such as 30s, 2m, 500ms; at most ${MAX_TIMEOUT_MS} ms)`;
  let ms: number;
  try {
    ms = /^[0-9]+$/.test(value) ? Number(value) : parseDuration(value, "--timeout");
  } catch {
    throw new UsageError(`Invalid --timeout: ${JSON.stringify(value)} ${expected}`);
  }
  if (!(ms > 0 && ms <= MAX_TIMEOUT_MS)) {
    throw new UsageError(`Invalid --timeout: ${JSON.stringify(value)} ${expected}`);
  }
  return ms;
}

/**
 * Parses the CLI's arguments.
 *
 * @example
 * ```ts
 * import { parseCliArgs } from "./parse_args.ts";
 * import assert from "node:assert/strict";
 *
 * const args = parseCliArgs(["-s", "disk-write-cwd", "ls", "-l"]);
 * assert.deepEqual(args.command, ["ls", "-l"]);
 * ```
 *
 * @param argv The arguments after the program name.
 * @returns The parsed arguments.
 * @throws {UsageError} On an unknown option, a missing or bad value, or an unknown permission.
 */
export function parseCliArgs(argv: readonly string[]): CliArgs {
  const args: CliArgs = {
    permissions: [],
    fullAuto: false,
    help: false,
    version: false,
    json: false,
    stdin: false,
    probe: false,
    explain: false,
    requireFull: false,
    quiet: false,
    env: [],
    clearEnv: false,
    inheritEnv: false,
    restrictReads: false,
    hide: [],
    show: [],
    denyDomains: [],
    limits: {},
    command: [],
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      i++;
      break;
    }
    if (!arg.startsWith("-") || arg === "-") break;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    let name = eq === -1 ? arg : arg.slice(0, eq);
    let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    if (!arg.startsWith("--") && arg.length > 2) {
      // -sVALUE
      name = arg.slice(0, 2);
      value = arg.slice(2);
    }
    const flag = FLAGS.get(name);
    if (flag) {
      if (value !== undefined) throw new UsageError(`Option ${name} takes no value: ${arg}`);
      args[flag] = true;
      continue;
    }
    const option = WITH_VALUE.get(name);
    if (!option) throw new UsageError(`Unknown option: ${arg}`);
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`Option ${name} needs a value`);
      value = argv[++i];
    }
    if (option === "sandbox-permission") {
      try {
        args.permissions.push(parsePermission(value));
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
    } else if (option === "timeout") {
      args.timeoutMs = parseTimeout(value);
    } else if (option === "env") {
      if (!validEnvEntry(value)) {
        throw new UsageError(`Invalid --env: ${JSON.stringify(value)} (KEY or KEY=VALUE)`);
      }
      args.env.push(value);
    } else if (option === "hide" || option === "show") {
      if (value === "" || value.includes("\0")) {
        throw new UsageError(`Invalid --${option}: ${JSON.stringify(value)} (a path)`);
      }
      args[option].push(value);
    } else if (option === "limit") {
      try {
        Object.assign(args.limits, parseLimits({ [name.slice(2)]: value }));
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
    } else if (option === "deny-domain") {
      try {
        args.denyDomains.push(formatDomainPattern(parseDomainPattern(value)));
      } catch (error) {
        throw new UsageError(`Invalid --deny-domain: ${(error as Error).message}`);
      }
    } else if (option === "run-as") {
      if (value === "") throw new UsageError("Invalid --run-as: empty (USER or USER:GROUP)");
      args.runAs = value;
    } else {
      if (value === "") throw new UsageError(`Invalid ${name}: empty path`);
      if (option === "cwd") args.cwd = value;
      else args.config = value;
    }
  }
  args.command = argv.slice(i);
  if (args.probe && args.command.length > 0) {
    throw new UsageError(`Option --probe takes no command: ${args.command[0]}`);
  }
  if (args.restrictReads && args.permissions.some((p) => p.kind === "disk-full-read-access")) {
    throw new UsageError(
      "Option --restrict-reads contradicts -s disk-full-read-access: give one or the other",
    );
  }
  if (args.stdin && !args.json) {
    throw new UsageError("Option --stdin needs --json (otherwise stdin is the command's already)");
  }
  return args;
}
