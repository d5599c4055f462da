/**
 * The sandbox plan: everything the child applies before `execve`, decided in the parent. It is
 * what `--explain` prints, what tests assert on and what the child receives.
 *
 * @module
 */

import { basename, dirname, isAbsolute, resolve } from "./_path.ts";
import {
  LANDLOCK_SCOPE_SIGNAL,
  type LandlockPathInput,
  type LandlockPlan,
  planLandlock,
} from "./landlock.ts";
import { type CapabilityPlan, planCapabilities } from "./capabilities.ts";
import { formatPermission } from "./permission.ts";
import type { RunAs } from "./run_as.ts";
import {
  ifExists,
  type PathHost,
  PolicyError,
  type SandboxPolicy,
  systemPathHost,
} from "./sandbox_policy.ts";
import { planSeccomp, type SeccompArch, type SeccompPlan } from "./seccomp.ts";
import { PLAN_VERSION } from "./_plan_version.ts";
import { pathOf, programCandidates } from "./path_search.ts";

/**
 * Readable without `disk-full-read-access`: what programs need to start, nothing personal.
 * `/proc` as a whole: a rule on `/proc/<pid>` would bind to one process.
 */
export const PLATFORM_READ_PATHS: readonly string[] = [
  "/usr",
  "/bin",
  "/sbin",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
  "/etc",
  "/proc",
  "/dev/zero",
  "/dev/urandom",
  "/dev/random",
];

/** Programs whose installation stays readable with restricted reads, so that they start. */
export const STARTER_PROGRAMS: readonly string[] = ["sh", "python3", "node"];

export { PLAN_VERSION } from "./_plan_version.ts";

/** What the planner must know about the kernel and the process that applies the plan; probed. */
export interface KernelFacts {
  /** The architecture the child runs on. */
  arch: SeccompArch;
  /** The Landlock ABI, 0 when absent or disabled. */
  landlockAbi: number;
  /** The kernel's highest capability number (`/proc/sys/kernel/cap_last_cap`). */
  capLastCap: number;
  /** The uid of the process that applies the plan. */
  uid: number;
  /** The capabilities in its effective set. */
  effectiveCapabilities: readonly number[];
}

/** `PathHost` plus what the planner needs to mask rules. */
export interface PlanHost extends PathHost {
  /** Whether a path is a directory, or `undefined` when nothing is there. */
  isDirectory(path: string): boolean | undefined;
}

/** The host of the running process. */
export const systemPlanHost: PlanHost = {
  ...systemPathHost,
  isDirectory: (path: string) => ifExists(() => Deno.statSync(path).isDirectory),
};

/** What to run. */
export interface CommandSpec {
  /** The program and its arguments; the program is searched in the command's `PATH`. */
  argv: readonly string[];
  /** The working folder, absolute or relative to the caller's. */
  cwd: string;
  /** The command's whole environment, given to `execve` only. */
  env: Readonly<Record<string, string>>;
  /** Another identity to run it with (root only). @default undefined (the caller's) */
  runAs?: RunAs;
}

/**
 * Printed when a restricted policy runs as root without another identity: Landlock does not
 * restrict a file's metadata, and root owns most files.
 */
export const ROOT_WARNING: string =
  "running as root: the command can still change the mode, times and extended attributes of " +
  "files root owns (Landlock does not restrict them); run it as another user with --run-as USER";

/** Everything the child does between starting and `execve`, as plain data. */
export interface SandboxPlan {
  /** `PLAN_VERSION`. */
  version: number;
  /** The program and its arguments. */
  argv: string[];
  /** The canonical working folder. */
  cwd: string;
  /** The command's environment, as `KEY=VALUE` strings for `envp`. */
  env: string[];
  /** The policy's permissions as a user types them. */
  permissions: string[];
  /** Canonical writable roots (empty with `disk-full-write-access`). */
  writableRoots: string[];
  /** With restricted reads: what may be read, canonical (empty with `disk-full-read-access`). */
  readableRoots: string[];
  /** The identity the command runs with, or `null` to keep the caller's. */
  runAs: RunAs | null;
  /** Whether the child sets `PR_SET_NO_NEW_PRIVS`; always, when anything is restricted. */
  noNewPrivs: boolean;
  /** The Landlock ruleset. */
  landlock: LandlockPlan;
  /** The seccomp filter, or `null` when nothing is restricted. */
  seccomp: SeccompPlan | null;
  /** The capabilities the command keeps, or `null` when nothing is restricted. */
  capabilities: CapabilityPlan | null;
  /** Whether the plan may run: false when Landlock is needed and absent. */
  runnable: boolean;
  /** What the person running the command should know, a line each (the CLI prints them). */
  warnings: string[];
  /** Set by the supervisor, not by `planSandbox`: what the supervised child joins. */
  supervision?: Supervision;
}

/** What a supervised child does before it applies the plan, so it can be killed as a whole. */
export interface Supervision {
  /** The supervising process: the child dies with it, and refuses to start without it. */
  parentPid: number;
  /** A `cgroup.procs` file to join, so that every descendant can be killed together. */
  cgroupProcs?: string;
}

/**
 * Decides everything the child will apply. Pure apart from the host's path lookups.
 *
 * @example
 * ```ts
 * import { planSandbox } from "./plan.ts";
 * import { SandboxPolicy } from "./sandbox_policy.ts";
 * import assert from "node:assert/strict";
 *
 * const plan = planSandbox(SandboxPolicy.readOnly(), { argv: ["true"], cwd: "/", env: {} }, {
 *   arch: "x86_64",
 *   landlockAbi: 7,
 *   capLastCap: 40,
 *   uid: 1000,
 *   effectiveCapabilities: [],
 * });
 * assert.equal(plan.landlock.enforcement, "full");
 * assert.deepEqual(plan.writableRoots, []);
 * assert.deepEqual(plan.capabilities?.keep, []);
 * ```
 *
 * @param policy The policy.
 * @param command What to run.
 * @param kernel The kernel's facts.
 * @param host Where paths are looked up; the running system by default.
 * @returns The plan.
 * @throws {PolicyError} When the cwd or a writable root is missing, a root is `/`, the
 * command cannot be passed to `execve`, or another identity is asked for by a caller that is
 * not root.
 */
export function planSandbox(
  policy: SandboxPolicy,
  command: CommandSpec,
  kernel: KernelFacts,
  host: PlanHost = systemPlanHost,
): SandboxPlan {
  validateCommand(command);
  if (command.runAs && kernel.uid !== 0) {
    throw new PolicyError(
      "invalid-run-as",
      command.runAs.spec,
      `Running as ${command.runAs.spec} needs root (this process runs as uid ${kernel.uid})`,
    );
  }
  const wantedCwd = isAbsolute(command.cwd) ? command.cwd : resolve(command.cwd);
  const cwd = host.realPath(wantedCwd);
  if (cwd === undefined || host.isDirectory(cwd) !== true) {
    throw new PolicyError(
      "missing-folder",
      command.cwd,
      `Working folder does not exist: ${command.cwd}`,
    );
  }
  const restrictWrites = !policy.hasFullDiskWriteAccess();
  const restrictReads = !policy.hasFullDiskReadAccess();
  const restrictNetwork = !policy.hasFullNetworkAccess();
  const writableRoots = restrictWrites ? policy.getWritableRootsWithCwd(cwd, host) : [];
  // Markers a command (or a build script) can test; the network one as in Codex.
  const env: Record<string, string> = { ...command.env, LLMX_SANDBOX: "1" };
  if (restrictNetwork) env.LLMX_SANDBOX_NETWORK_DISABLED = "1";
  if (restrictReads && cwd === "/") {
    // The cwd is readable: in / that would silently be full read access.
    throw new PolicyError(
      "filesystem-root",
      command.cwd,
      "The working folder / would make everything readable; ask for disk-full-read-access " +
        "or run in another folder",
    );
  }
  const envEntries = envList(env);
  const commandPath = pathOf(envEntries);
  const readableRoots = restrictReads
    ? unique([
      ...PLATFORM_READ_PATHS.flatMap((path) => host.realPath(path) ?? []),
      cwd,
      ...policy.getReadableRoots(cwd, host),
      ...programRoots(command.argv[0], commandPath, cwd, host, false),
      ...STARTER_PROGRAMS.flatMap((program) => programRoots(program, commandPath, cwd, host, true)),
    ])
    : [];
  const tcpPorts = policy.getTcpPorts();
  const describe = (path: string): LandlockPathInput | undefined => {
    const isDirectory = host.isDirectory(path);
    return isDirectory === undefined ? undefined : { path, isDirectory };
  };
  const landlock = planLandlock({
    abi: kernel.landlockAbi,
    restrictWrites,
    restrictNetwork,
    writableRoots: writableRoots.map((path) => ({ path, isDirectory: host.isDirectory(path)! })),
    devices: { null: describe("/dev/null"), tty: describe("/dev/tty") },
    restrictReads,
    readableRoots: readableRoots.flatMap((path) => describe(path) ?? []),
    tcpPorts,
  });
  const restricted = restrictWrites || restrictReads || restrictNetwork;
  const uid = command.runAs?.uid ?? kernel.uid;
  return {
    version: PLAN_VERSION,
    argv: [...command.argv],
    cwd,
    env: envEntries,
    permissions: policy.permissions.map(formatPermission),
    writableRoots,
    readableRoots,
    runAs: command.runAs ? { ...command.runAs, groups: [...command.runAs.groups] } : null,
    noNewPrivs: restricted,
    landlock,
    seccomp: restricted
      ? planSeccomp({
        arch: kernel.arch,
        restrictNetwork,
        tcp: { connect: tcpPorts.connect.length > 0, bind: tcpPorts.bind.length > 0 },
        // What Landlock keeps inside needs no row; what it does not, seccomp refuses.
        ptraceScoped: landlock.apply,
        signalsScoped: (landlock.scoped & LANDLOCK_SCOPE_SIGNAL) !== 0,
      })
      : null,
    capabilities: restricted
      ? planCapabilities({
        // Reading everything as root is part of what full write keeps; with reads restricted,
        // CAP_DAC_READ_SEARCH and the rest go too.
        restrictWrites: restrictWrites || restrictReads,
        restrictNetwork,
        uid,
        lastCap: kernel.capLastCap,
        effective: kernel.effectiveCapabilities,
      })
      : null,
    runnable: landlock.enforcement !== "none",
    warnings: restricted && !command.runAs && kernel.uid === 0 ? [ROOT_WARNING] : [],
  };
}

/** Sorted: the same environment always makes the same plan (Deno's toObject() order varies). */
function envList(env: Readonly<Record<string, string>>): string[] {
  return Object.entries(env).map(([key, value]) => `${key}=${value}`).sort();
}

function unique(paths: readonly string[]): string[] {
  return [...new Set(paths)];
}

/**
 * What must stay readable for a program to start with restricted reads, for where `PATH`
 * finds it and for what that resolves to. For `sh`, `python3` and `node` (`starter`): their
 * installation prefix (`/opt/x/bin/p` gives `/opt/x`, a pyenv shim `~/.pyenv/shims/python3`
 * gives `~/.pyenv`), never `/` or the home folder itself. For the command's own program the
 * same outside the home folder; inside it only the program's file, since a prefix there
 * (`~/.cargo`) holds the user's credentials.
 */
function programRoots(
  program: string,
  path: string | undefined,
  cwd: string,
  host: PlanHost,
  starter: boolean,
): string[] {
  const found = programCandidates(program, path)
    .map((candidate) => isAbsolute(candidate) ? candidate : resolve(cwd, candidate))
    .find((candidate) => host.isDirectory(candidate) === false);
  if (found === undefined) return [];
  const home = host.home?.();
  const real = host.realPath(found);
  const underHome = (candidate: string) =>
    home !== undefined && (candidate === home || candidate.startsWith(`${home}/`));
  const tooWide = (candidate: string) =>
    candidate === "/" ||
    (home !== undefined && (home === candidate || home.startsWith(`${candidate}/`)));
  return unique([found, ...(real ? [real] : [])].map((file) => {
    if (!starter && underHome(file)) return file;
    const folder = dirname(file);
    const prefix = ["bin", "sbin", "shims"].includes(basename(folder)) ? dirname(folder) : folder;
    if (!tooWide(prefix)) return host.realPath(prefix) ?? prefix;
    return tooWide(folder) ? file : folder;
  }));
}

function validateCommand(command: CommandSpec): void {
  const invalid = (what: string, value: string) =>
    new PolicyError("invalid-command", value, `Invalid ${what}: ${JSON.stringify(value)}`);
  if (command.argv.length === 0 || command.argv[0] === "") {
    throw new PolicyError("invalid-command", "", "No command to run");
  }
  // execve takes C strings: a NUL would silently cut an argument or a variable short.
  for (const arg of command.argv) if (arg.includes("\0")) throw invalid("argument", arg);
  for (const [key, value] of Object.entries(command.env)) {
    if (key === "" || key.includes("=") || key.includes("\0")) {
      throw invalid("environment variable name", key);
    }
    if (value.includes("\0")) throw invalid(`value for ${key}`, value);
  }
}
