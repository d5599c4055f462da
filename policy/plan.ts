/**
 * The sandbox plan: everything the child applies before `execve`, decided in the parent. It is
 * what `--explain` prints, what tests assert on and what the child receives.
 *
 * @module
 */

import { basename, dirname, isAbsolute, resolve } from "./_path.ts";
import {
  type FileIdentity,
  FS_FILE_RIGHTS,
  FS_READ_RIGHTS,
  LANDLOCK_ACCESS_FS_IOCTL_DEV,
  LANDLOCK_ACCESS_FS_READ_FILE,
  LANDLOCK_ACCESS_FS_WRITE_FILE,
  LANDLOCK_SCOPE_SIGNAL,
  type LandlockGrant,
  type LandlockPathInput,
  type LandlockPlan,
  planLandlock,
} from "./landlock.ts";
import { type EntryInfo, isWithin, planReadScope, SYSTEM_TREES } from "./read_scope.ts";
import { resolveSecrets } from "./secrets.ts";
import { type CapabilityPlan, planCapabilities } from "./capabilities.ts";
import { formatPermission } from "./permission.ts";
import type { RunAs } from "./run_as.ts";
import {
  expandPath,
  ifExists,
  type PathHost,
  PolicyError,
  type SandboxPolicy,
  systemPathHost,
} from "./sandbox_policy.ts";
import { planSeccomp, type SeccompArch, type SeccompPlan } from "./seccomp.ts";
import type { ListenPolicy } from "./listen.ts";
import { type LimitFacts, type LimitPlan, planLimits, type ResourceLimits } from "./limits.ts";
import { checkLoadedFiles, type LoadedFile, type ProtectedPlace } from "./self_protection.ts";
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
];

const READ = LANDLOCK_ACCESS_FS_READ_FILE;
const READ_WRITE = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE;
const TERMINAL = READ_WRITE | LANDLOCK_ACCESS_FS_IOCTL_DEV;

/**
 * The device nodes a command may use, granted by name: `/dev` itself is never read as a whole,
 * since it holds other users' and sessions' terminals (`/dev/pts/*`: what is typed there),
 * input devices and, for root, raw disks.
 */
export const DEVICE_GRANTS: readonly { path: string; access: number }[] = [
  { path: "/dev/null", access: FS_FILE_RIGHTS },
  { path: "/dev/zero", access: READ },
  { path: "/dev/full", access: READ_WRITE },
  { path: "/dev/random", access: READ },
  { path: "/dev/urandom", access: READ },
];

/** Readable with full read: POSIX shared memory and semaphores (`shm_open`, `sem_open`). */
const FULL_READ_DEVICE_FOLDERS: readonly string[] = ["/dev/shm"];

/**
 * Never granted reading as a whole (a command's program prefix included): every user's and
 * process's shared folders, the kernel's views of processes and devices.
 */
const SHARED_FOLDERS: readonly string[] = ["/tmp", "/var/tmp", "/dev/shm", "/run", "/proc", "/dev"];

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
  /**
   * What this system offers for resource limits (cgroups, rlimits).
   * @default none usable: rlimits only
   */
  limits?: LimitFacts;
}

/** `PathHost` plus what the planner needs to make and check rules. */
export interface PlanHost extends PathHost {
  /** What is at a path, symlinks followed; `undefined` when nothing is there. */
  stat(path: string): EntryInfo | undefined;
  /** What is at a path, a final symlink not followed; `undefined` when nothing is there. */
  lstat(path: string): EntryInfo | undefined;
  /** The names in a folder, or `undefined` when it cannot be listed. */
  readDir(path: string): string[] | undefined;
  /** The machine's accounts and their home folders (`/etc/passwd`). @default none */
  userHomes?(): { uid: number; home: string }[];
}

function entryInfo(info: Deno.FileInfo): EntryInfo {
  const born = info.birthtime?.getTime();
  return {
    isDirectory: info.isDirectory,
    isSymlink: info.isSymlink,
    dev: info.dev,
    ino: info.ino ?? 0,
    ...(born ? { born } : {}),
  };
}

/** The host of the running process. */
export const systemPlanHost: PlanHost = {
  ...systemPathHost,
  stat: (path: string) => ifReadable(() => entryInfo(Deno.statSync(path))),
  lstat: (path: string) => ifReadable(() => entryInfo(Deno.lstatSync(path))),
  readDir: (path: string) =>
    ifReadable(() => [...Deno.readDirSync(path)].map((entry) => entry.name)),
  userHomes: () => {
    try {
      return Deno.readTextFileSync("/etc/passwd").split("\n").flatMap((line) => {
        const [, , uid, , , home] = line.split(":");
        return /^[0-9]+$/.test(uid ?? "") && home?.startsWith("/")
          ? [{ uid: Number(uid), home }]
          : [];
      });
    } catch {
      return [];
    }
  },
};

/** A lookup that may also be refused (a folder the caller cannot enter): `undefined` then. */
function ifReadable<T>(lookup: () => T): T | undefined {
  try {
    return ifExists(lookup);
  } catch (error) {
    if (error instanceof Deno.errors.PermissionDenied) return undefined;
    throw error;
  }
}

/** What to run. */
export interface CommandSpec {
  /** The program and its arguments; the program is searched in the command's `PATH`. */
  argv: readonly string[];
  /** The working folder, absolute or relative to the caller's. */
  cwd: string;
  /** The command's whole environment, given to `execve` only. */
  env: Readonly<Record<string, string>>;
  /** The caller's variables left out because their names look like credentials. @default none */
  envDropped?: readonly string[];
  /** Another identity to run it with (root only). @default undefined (the caller's) */
  runAs?: RunAs;
  /**
   * Resource limits (`--max-memory` and the rest); the default process cap applies unless
   * `processes` is 0. @default the default process cap only
   */
  limits?: ResourceLimits;
  /**
   * The terminal the command is given: the device nodes of its standard streams that are
   * terminals, and whether it keeps the caller's controlling terminal (`/dev/tty`; in place
   * only: a supervised command starts a session of its own).
   * @default undefined (no terminal)
   */
  terminal?: { devices: readonly string[]; controlling: boolean };
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
  /** The working folder's file: the child refuses to run anywhere else. */
  cwdIdentity: FileIdentity;
  /** The command's environment, as `KEY=VALUE` strings for `envp`. */
  env: string[];
  /** The caller's variables left out because their names look like credentials (names only). */
  envDropped: string[];
  /** The policy's permissions as a user types them. */
  permissions: string[];
  /** Canonical writable roots (empty with `disk-full-write-access`). */
  writableRoots: string[];
  /** With restricted reads: what may be read, canonical (empty with `disk-full-read-access`). */
  readableRoots: string[];
  /** What is read nowhere beneath: credential locations, canonical (`/dev` is never read whole). */
  hidden: string[];
  /** What `--show` made readable again inside a hidden location. */
  shown: string[];
  /** Of `hidden`, the other users' home folders hidden as a whole (as root). */
  hiddenHomes: string[];
  /**
   * What later runs load before their sandbox (Deno, its libraries, this tool, its caches, the
   * config file), checked to lie outside every writable root; empty with full write.
   */
  protected: ProtectedPlace[];
  /** The identity the command runs with, or `null` to keep the caller's. */
  runAs: RunAs | null;
  /** Whether the child sets `PR_SET_NO_NEW_PRIVS`; always, when anything is restricted. */
  noNewPrivs: boolean;
  /** The Landlock ruleset. */
  landlock: LandlockPlan;
  /**
   * With `listen` handed to the supervisor (`seccomp.notify`): what it may perform for the
   * command; `null` otherwise.
   */
  listen: ListenPolicy | null;
  /**
   * With `network-domain`: the built-in proxy the supervisor runs for the command, the only
   * place its TCP connections may go (Landlock allows connecting to the proxy's port alone,
   * seccomp only TCP sockets); `null` otherwise.
   */
  proxy: ProxyPlan | null;
  /** The seccomp filter, or `null` when nothing is restricted. */
  seccomp: SeccompPlan | null;
  /** The resource limits: each with what enforces it here, the cgroup writes and the rlimits. */
  limits: LimitPlan;
  /** The capabilities the command keeps, or `null` when nothing is restricted. */
  capabilities: CapabilityPlan | null;
  /** Whether the plan may run: false when Landlock is needed and absent. */
  runnable: boolean;
  /** What the person running the command should know, a line each (the CLI prints them). */
  warnings: string[];
  /** Set by the supervisor, not by `planSandbox`: what the supervised child joins. */
  supervision?: Supervision;
}

const NONE = { usable: false, detail: "not probed" };
const NO_CGROUPS: LimitFacts = {
  uid: -1,
  cgroupV2: { memory: NONE, pids: NONE },
  cgroupV1: { memory: NONE, pids: NONE },
};

/** The built-in proxy of `network-domain`, as planned. */
export interface ProxyPlan {
  /** The allowed patterns (`network-domain`), canonical. */
  allow: string[];
  /** The refused patterns (`--deny-domain`), canonical; they win. */
  deny: string[];
  /**
   * The proxy's TCP port on 127.0.0.1: 0 in a plan, set by the supervisor when it starts the
   * proxy (with the Landlock rule that lets the command connect to it).
   */
  port: number;
}

/** What a supervised child does before it applies the plan, so it can be killed as a whole. */
export interface Supervision {
  /** The supervising process: the child dies with it, and refuses to start without it. */
  parentPid: number;
  /** A `cgroup.procs` file to join, so that every descendant can be killed together. */
  cgroupProcs?: string;
  /** The `cgroup.procs` files of the run's cgroup v1 folders for its limits. */
  limitProcs?: string[];
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
 * @param loaded What a later run loads before its sandbox; none may be writable.
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
  loaded: readonly LoadedFile[] = [],
): SandboxPlan {
  validateCommand(command);
  if (command.runAs?.uid === 0) {
    // What --run-as is for (root's files out of reach, full write without core_pattern) needs
    // another uid than root's.
    throw new PolicyError(
      "invalid-run-as",
      command.runAs.spec,
      `--run-as ${command.runAs.spec} is uid 0: the command would still be root; name another user`,
    );
  }
  if (command.runAs && kernel.uid !== 0) {
    throw new PolicyError(
      "invalid-run-as",
      command.runAs.spec,
      `Running as ${command.runAs.spec} needs root (this process runs as uid ${kernel.uid})`,
    );
  }
  // The caller's folder only for a relative one: it may be gone, and is not needed otherwise.
  const wantedCwd = expandPath(
    command.cwd,
    /^[/~]/.test(command.cwd) ? "/" : resolve("."),
    host,
    "Working folder",
  );
  const cwd = host.realPath(wantedCwd);
  const cwdInfo = cwd === undefined ? undefined : host.stat(cwd);
  if (cwd === undefined || cwdInfo?.isDirectory !== true) {
    throw new PolicyError(
      "missing-folder",
      command.cwd,
      `Working folder does not exist: ${command.cwd}`,
    );
  }
  const restrictWrites = !policy.hasFullDiskWriteAccess();
  const restrictReads = !policy.hasFullDiskReadAccess();
  const restrictNetwork = !policy.hasFullNetworkAccess();
  const restrictUnix = !policy.hasUnixSockets();
  if (!restrictWrites && restrictNetwork && kernel.uid === 0 && !command.runAs) {
    // Root that may write anything can write /proc/sys/kernel/core_pattern; the kernel then
    // runs the helper named there as root, with every capability, no seccomp and the network.
    throw new PolicyError(
      "root-full-write",
      "disk-full-write-access",
      "As root, disk-full-write-access cannot keep the network closed (it can rewrite " +
        "/proc/sys/kernel/core_pattern, whose helper the kernel runs as root with the network " +
        "and every capability); run the command as another user with --run-as USER, or grant " +
        "network-full-access too",
    );
  }
  const writableRoots = restrictWrites ? policy.getWritableRootsWithCwd(cwd, host) : [];
  const readFolders = policy.getReadableRoots(cwd, host);
  // Markers a command (or a build script) can test; the network one as in Codex.
  const env: Record<string, string> = { ...command.env, LLMX_SANDBOX: "1" };
  if (restrictNetwork) env.LLMX_SANDBOX_NETWORK_DISABLED = "1";
  const home = homeOf(host);
  if (restrictReads && (cwd === "/" || (home !== undefined && isWithin(home, cwd)))) {
    // The cwd is readable: in / (or above the home folder) that would silently be most of it.
    throw new PolicyError(
      "filesystem-root",
      command.cwd,
      `The working folder ${cwd} would make ${
        cwd === "/" ? "everything" : "your home folder"
      } readable; ask for full read or run in a project folder`,
    );
  }
  const homes = homeFolders(host, home, kernel.uid, command.runAs?.uid, [cwd, ...writableRoots]);
  const hide = policy.hide.map((path) => expandPath(path, cwd, host, "Hidden path"));
  if (hide.some((path) => host.realPath(path) === "/")) {
    throw new PolicyError(
      "invalid-path",
      "/",
      "Hiding / would hide everything; to read only what the command needs, use --restrict-reads",
    );
  }
  const secrets = resolveSecrets({
    homes: homes.credentials,
    otherHomes: homes.hiddenWhole,
    hide,
    show: policy.show.map((path) => expandPath(path, cwd, host, "Shown path")),
  }, host);
  refuseHiddenConflicts(secrets.hidden, writableRoots, "writable root");
  if (restrictReads) refuseHiddenConflicts(secrets.hidden, [cwd], "working folder", true);
  const protectedPlaces = restrictWrites ? checkLoadedFiles(loaded, writableRoots, host) : [];
  refuseHiddenConflicts(secrets.hidden, readFolders, "readable folder", true);

  const envEntries = envList(env);
  const commandPath = pathOf(envEntries);
  const readableRoots = restrictReads
    ? unique([
      ...PLATFORM_READ_PATHS.flatMap((path) => host.realPath(path) ?? []),
      cwd,
      ...readFolders,
      ...programRoots(command.argv[0], commandPath, cwd, host, false),
      ...STARTER_PROGRAMS.flatMap((program) => programRoots(program, commandPath, cwd, host, true)),
    ])
    : [];
  const restricted = restrictWrites || restrictReads || restrictNetwork || restrictUnix ||
    secrets.hidden.length > 0;
  const identify = (path: string): LandlockPathInput | undefined => {
    const real = host.realPath(path);
    const info = real === undefined ? undefined : host.stat(real);
    return info === undefined ? undefined : {
      path: real!,
      isDirectory: info.isDirectory,
      dev: info.dev,
      ino: info.ino,
      ...(info.born ? { born: info.born } : {}),
    };
  };
  const root = identify("/")!;
  // Never read as a whole: other terminals live in /dev. What a command needs is granted by name.
  const holes = unique([
    ...secrets.hidden,
    ...(restricted && host.realPath("/dev") ? ["/dev"] : []),
  ]);
  const scope = planReadScope(
    (restrictReads ? readableRoots : ["/"]).flatMap((path) => identify(path) ?? []),
    holes,
    host,
  );
  // Shown inside a hidden location: a rule of its own, in the hole.
  scope.readable.push(...secrets.shown.flatMap((path) => identify(path) ?? []));
  const devices: LandlockGrant[] = [
    ...DEVICE_GRANTS.flatMap(({ path, access }) => grant(identify(path), access)),
    ...(restrictReads ? [] : FULL_READ_DEVICE_FOLDERS)
      .flatMap((path) => grant(identify(path), FS_READ_RIGHTS)),
    ...(command.terminal?.controlling ? grant(identify("/dev/tty"), TERMINAL) : []),
    ...(command.terminal?.devices ?? []).flatMap((path) => grant(identify(path), TERMINAL)),
  ];
  const tcpPorts = policy.getTcpPorts();
  const domains = policy.getDomains();
  const landlock = planLandlock({
    abi: kernel.landlockAbi,
    restrictWrites,
    restrictNetwork,
    scopeAbstractUnix: restrictUnix,
    root,
    writableRoots: writableRoots.flatMap((path) => identify(path) ?? []),
    devices,
    restrictReads: restricted && (restrictReads || holes.length > 0),
    hidingOnly: !restrictReads,
    readableRoots: scope.readable,
    listableFolders: scope.listable,
    tcpPorts,
    proxy: domains.length > 0,
  });
  const uid = command.runAs?.uid ?? kernel.uid;
  const seccomp = restricted
    ? planSeccomp({
      arch: kernel.arch,
      restrictNetwork,
      restrictUnix,
      rootSetIdBits: uid === 0 && restrictWrites,
      tcp: {
        connect: tcpPorts.connect.length > 0 || domains.length > 0,
        bind: tcpPorts.bind.length > 0,
      },
      // What Landlock keeps inside needs no row; what it does not, seccomp refuses.
      ptraceScoped: landlock.apply,
      signalsScoped: (landlock.scoped & LANDLOCK_SCOPE_SIGNAL) !== 0,
    })
    : null;
  return {
    version: PLAN_VERSION,
    argv: [...command.argv],
    cwd,
    cwdIdentity: {
      dev: cwdInfo.dev,
      ino: cwdInfo.ino,
      ...(cwdInfo.born ? { born: cwdInfo.born } : {}),
    },
    env: envEntries,
    envDropped: [...(command.envDropped ?? [])],
    permissions: policy.permissions.map(formatPermission),
    writableRoots,
    readableRoots,
    hidden: secrets.hidden,
    shown: secrets.shown,
    hiddenHomes: secrets.hidden.filter((path) => homes.hiddenWhole.includes(path)),
    protected: protectedPlaces,
    runAs: command.runAs ? { ...command.runAs, groups: [...command.runAs.groups] } : null,
    noNewPrivs: restricted,
    landlock,
    seccomp,
    listen: seccomp?.notify.includes("listen")
      ? { unix: !restrictUnix, ports: tcpPorts.bind }
      : null,
    proxy: domains.length > 0 ? { allow: domains, deny: [...policy.denyDomains], port: 0 } : null,
    limits: planLimits(command.limits ?? {}, {
      ...(kernel.limits ?? NO_CGROUPS),
      uid,
      // As root with full write, the command keeps what lets it leave cgroups and raise rlimits.
      privilegedCommand: uid === 0 && !restrictWrites,
    }),
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
    warnings: [
      ...(restricted && !command.runAs && kernel.uid === 0 ? [ROOT_WARNING] : []),
      ...secrets.nowhere.map((path) =>
        `${
          policy.hide.includes(path) ? "--hide" : "--show"
        } ${path}: nothing is there, so it changes nothing`
      ),
    ],
  };
}

function grant(target: LandlockPathInput | undefined, access: number): LandlockGrant[] {
  return target === undefined ? [] : [{ target, access }];
}

/** The caller's home folder, canonical, when `$HOME` names one. */
function homeOf(host: PlanHost): string | undefined {
  const home = host.home?.();
  return home && isAbsolute(home) ? host.realPath(home) : undefined;
}

/**
 * Folders that system accounts have for a home and that are no one's private files: the system
 * itself, and shared places (`/var`, `/home`, `/tmp`...).
 */
function isSystemFolder(path: string): boolean {
  const exact = ["/", "/home", "/var", "/var/lib", "/srv", "/opt", "/tmp", "/var/tmp", "/mnt"];
  const beneath = [...SYSTEM_TREES, "/var/run", "/nonexistent", "/var/cache", "/var/empty"];
  return exact.includes(path) || beneath.some((folder) => isWithin(path, folder));
}

/**
 * The home folders whose credential locations are hidden (the caller's by `$HOME` and by its
 * account, the command's with `--run-as`, `/root`), and, for a command run by root, the other
 * users' home folders hidden as a whole; one of those that holds the working folder or a writable
 * root is the command's to work in, and keeps only its credential locations hidden.
 */
function homeFolders(
  host: PlanHost,
  home: string | undefined,
  uid: number,
  runAs: number | undefined,
  used: readonly string[],
): { credentials: string[]; hiddenWhole: string[] } {
  const accounts = host.userHomes?.() ?? [];
  const real = (path: string) => host.realPath(path);
  const own = unique([
    ...(home ? [home] : []),
    ...accounts.filter((account) => account.uid === uid || account.uid === runAs)
      .flatMap((account) => real(account.home) ?? []),
    ...(real("/root") ? ["/root"] : []),
  ]).filter((path) => path !== "/");
  // Every account's but root's whose home is not a system folder (a service's data in
  // /var/lib counts), and every folder in /home, which also holds the homes of accounts that
  // /etc/passwd does not list (LDAP, SSSD).
  const others = uid !== 0 ? [] : unique(
    [
      ...accounts.filter((account) => account.uid !== 0 && !isSystemFolder(account.home))
        .map((account) => account.home),
      ...(host.readDir("/home") ?? []).map((name) => `/home/${name}`)
        .filter((path) => host.stat(path)?.isDirectory),
    ].flatMap((path) => real(path) ?? []),
  ).filter((path) =>
    !isSystemFolder(path) &&
    !own.some((mine) => isWithin(mine, path) || isWithin(path, mine))
  );
  const inUse = (path: string) => used.some((place) => isWithin(place, path));
  return {
    credentials: unique([...own, ...others.filter(inUse)]),
    hiddenWhole: others.filter((path) => !inUse(path)),
  };
}

/**
 * Refuses a root that holds a hidden location, or lies inside one: writing implies reading (and a
 * read folder named inside a hidden one asks for what is hidden). `--show` settles it.
 */
function refuseHiddenConflicts(
  hidden: readonly string[],
  roots: readonly string[],
  what: string,
  insideOnly = false,
): void {
  for (const root of roots) {
    const around = hidden.find((path) => isWithin(root, path));
    if (around !== undefined) {
      throw new PolicyError(
        "hidden-conflict",
        root,
        `The ${what} ${root} ${root === around ? "is" : "lies inside"} the hidden location ` +
          `${around}; to make it readable, pass --show ${around}`,
      );
    }
    if (insideOnly) continue;
    const inside = hidden.filter((path) => isWithin(path, root));
    if (inside.length === 0) continue;
    const shown = inside.length > 4 ? [...inside.slice(0, 4), "..."] : inside;
    throw new PolicyError(
      "hidden-conflict",
      root,
      `The ${what} ${root} holds hidden locations (writing implies reading): ` +
        `${shown.join(", ")}; grant a narrower folder, or pass --show for each ` +
        `(${inside.map((path) => `--show ${path}`).slice(0, 2).join(" ")}${
          inside.length > 2 ? " ..." : ""
        })`,
    );
  }
}

/** Sorted: the same environment always makes the same plan (Deno's toObject() order varies). */
function envList(env: Readonly<Record<string, string>>): string[] {
  return Object.entries(env).map(([key, value]) => `${key}=${value}`).sort();
}

function unique(paths: readonly string[]): string[] {
  return [...new Set(paths)];
}

/**
 * What must stay readable for a program to start with restricted reads, decided on where the
 * program really is (symlinks resolved: the command names it, so its path proves nothing). For
 * `sh`, `python3` and `node` (`starter`): their installation prefix (`/opt/x/bin/p` gives
 * `/opt/x`, a pyenv shim `~/.pyenv/shims/python3` gives `~/.pyenv`). For the command's own
 * program the same outside the home folders; inside one only the program's file, since a prefix
 * there (`~/.cargo`) holds the user's credentials. Never `/`, a home folder or one of its
 * ancestors, a shared folder (`/tmp`, `/run`, ...) or anything in one: there only the file.
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
    .find((candidate) => host.stat(candidate)?.isDirectory === false);
  const real = found === undefined ? undefined : host.realPath(found);
  // A file of /proc is a view of a process, not a program's installation.
  if (real === undefined || isWithin(real, "/proc")) return [];
  const home = homeOf(host);
  const homes = unique(["/root", "/home", ...(home ? [home] : [])]);
  const private_ = SHARED_FOLDERS.some((folder) => isWithin(real, folder)) ||
    (!starter && homes.some((folder) => isWithin(real, folder)));
  if (private_) return [real];
  const tooWide = (candidate: string) =>
    [...homes, ...SHARED_FOLDERS].some((folder) => isWithin(folder, candidate));
  const folder = dirname(real);
  const prefix = ["bin", "sbin", "shims"].includes(basename(folder)) ? dirname(folder) : folder;
  return [[prefix, folder].find((candidate) => !tooWide(candidate)) ?? real];
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
