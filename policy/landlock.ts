/**
 * The Landlock part of a plan: which rights are handled on a given ABI, and the rules that
 * grant them back. Pure: the ABI and the kind of each path are given.
 *
 * @module
 */

// Constants from include/uapi/linux/landlock.h.
export const LANDLOCK_ACCESS_FS_EXECUTE = 1 << 0;
export const LANDLOCK_ACCESS_FS_WRITE_FILE = 1 << 1;
export const LANDLOCK_ACCESS_FS_READ_FILE = 1 << 2;
export const LANDLOCK_ACCESS_FS_READ_DIR = 1 << 3;
export const LANDLOCK_ACCESS_FS_REMOVE_DIR = 1 << 4;
export const LANDLOCK_ACCESS_FS_REMOVE_FILE = 1 << 5;
export const LANDLOCK_ACCESS_FS_MAKE_CHAR = 1 << 6;
export const LANDLOCK_ACCESS_FS_MAKE_DIR = 1 << 7;
export const LANDLOCK_ACCESS_FS_MAKE_REG = 1 << 8;
export const LANDLOCK_ACCESS_FS_MAKE_SOCK = 1 << 9;
export const LANDLOCK_ACCESS_FS_MAKE_FIFO = 1 << 10;
export const LANDLOCK_ACCESS_FS_MAKE_BLOCK = 1 << 11;
export const LANDLOCK_ACCESS_FS_MAKE_SYM = 1 << 12;
export const LANDLOCK_ACCESS_FS_REFER = 1 << 13;
export const LANDLOCK_ACCESS_FS_TRUNCATE = 1 << 14;
export const LANDLOCK_ACCESS_FS_IOCTL_DEV = 1 << 15;
export const LANDLOCK_ACCESS_NET_BIND_TCP = 1 << 0;
export const LANDLOCK_ACCESS_NET_CONNECT_TCP = 1 << 1;
export const LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0;
export const LANDLOCK_SCOPE_SIGNAL = 1 << 1;

/** The newest Landlock ABI this sandbox knows; "fully enforced" is measured against it. */
export const LANDLOCK_ABI_LATEST = 7;

const FS_RIGHT_NAMES: readonly string[] = [
  "execute",
  "write_file",
  "read_file",
  "read_dir",
  "remove_dir",
  "remove_file",
  "make_char",
  "make_dir",
  "make_reg",
  "make_sock",
  "make_fifo",
  "make_block",
  "make_sym",
  "refer",
  "truncate",
  "ioctl_dev",
];

/** The rights that apply to a file (not only to a directory's entries). */
export const FS_FILE_RIGHTS = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
  LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV;

/** Reading and running beneath `/`. */
export const FS_READ_RIGHTS = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE |
  LANDLOCK_ACCESS_FS_READ_DIR;

/**
 * The filesystem rights each ABI can handle (index = ABI). ABI 2 added REFER, 3 TRUNCATE,
 * 5 IOCTL_DEV; 4, 6 and 7 added none for files.
 */
const FS_RIGHTS_BY_ABI: readonly number[] = [
  0,
  0x1fff,
  0x3fff,
  0x7fff,
  0x7fff,
  0xffff,
  0xffff,
  0xffff,
];

/** All filesystem rights the newest known ABI handles. */
export const FS_ALL_RIGHTS = FS_RIGHTS_BY_ABI[LANDLOCK_ABI_LATEST];

/**
 * Filesystem rights available on an ABI.
 * @param abi The kernel's Landlock ABI (0 when absent); ABIs newer than known count as the newest.
 * @returns A mask of `LANDLOCK_ACCESS_FS_*`.
 */
export function fsRightsForAbi(abi: number): number {
  return FS_RIGHTS_BY_ABI[Math.max(0, Math.min(abi, LANDLOCK_ABI_LATEST))];
}

/**
 * Names a mask of filesystem rights, lowest bit first.
 * @param access A mask of `LANDLOCK_ACCESS_FS_*`.
 * @returns The rights' names as in the header, lower case, without the prefix.
 */
export function fsRightNames(access: number): string[] {
  return FS_RIGHT_NAMES.filter((_, bit) => (access & (1 << bit)) !== 0);
}

/** Which file a path named when it was planned: the child refuses any other. */
export interface FileIdentity {
  /** `st_dev`. */
  dev: number;
  /** `st_ino`. */
  ino: number;
  /**
   * When it was made, in milliseconds since the epoch, where the filesystem records it: an
   * inode number freed and reused by a new file at the same path is told apart by it.
   */
  born?: number;
}

/** A path the planner grants rights beneath, with what it is. */
export interface LandlockPathInput extends FileIdentity {
  /** Canonical absolute path, without a symlink in it. */
  path: string;
  /** Whether it is a directory; file-only rights are kept for anything else. */
  isDirectory: boolean;
}

/** A path granted some rights by name (a device node, a terminal). */
export interface LandlockGrant {
  /** The path. */
  target: LandlockPathInput;
  /** `LANDLOCK_ACCESS_FS_*` wanted beneath it, before masking. */
  access: number;
}

/** What the Landlock planner needs to know. */
export interface LandlockInput {
  /** The kernel's Landlock ABI, 0 when Landlock is absent or disabled. */
  abi: number;
  /** Whether writes are restricted (no `disk-full-write-access`). */
  restrictWrites: boolean;
  /** Whether the network is restricted (no `network-full-access`). */
  restrictNetwork: boolean;
  /**
   * Whether abstract UNIX sockets are kept inside the sandbox (no `network-unix-sockets`).
   * @default restrictNetwork
   */
  scopeAbstractUnix?: boolean;
  /** `/` as found on this system: granted reading (or writing) as a whole where the policy says. */
  root: LandlockPathInput;
  /** The writable roots, canonical. */
  writableRoots: readonly LandlockPathInput[];
  /** Paths granted by name, with their rights: `/dev/null`, the command's terminal. */
  devices: readonly LandlockGrant[];
  /**
   * Whether reads are limited to `readableRoots` (then `/` is not granted reading). Always so
   * when anything is hidden (other terminals in `/dev`, credentials). @default false
   */
  restrictReads?: boolean;
  /**
   * Whether reads are limited only to hide some places (full read otherwise): without Landlock
   * that is dropped (partial enforcement), not a reason to run nothing. @default false
   */
  hidingOnly?: boolean;
  /** With reads limited: what may be read (and run) beneath, canonical. @default [] */
  readableRoots?: readonly LandlockPathInput[];
  /**
   * With reads limited: folders on the way to something hidden, which may be listed (their
   * entries' names) but not read beneath. @default []
   */
  listableFolders?: readonly LandlockPathInput[];
  /** TCP ports opened while the rest of the network stays closed. @default none */
  tcpPorts?: { connect: readonly number[]; bind: readonly number[] };
  /**
   * Whether the command reaches the network through the supervisor's proxy (`network-domain`):
   * TCP connect is then allowed only to its port, a rule the supervisor adds when it knows the
   * port. @default false
   */
  proxy?: boolean;
}

/** One `landlock_net_port_attr` rule. */
export interface LandlockNetRule {
  /** The TCP port. */
  port: number;
  /** `LANDLOCK_ACCESS_NET_*` granted on it. */
  access: number;
  /** The same rights by name, for people. */
  rights: string[];
}

/**
 * One `landlock_add_rule(LANDLOCK_RULE_PATH_BENEATH)` call, on the file the path named when it
 * was planned: the child opens the path without following a final symlink and refuses to add
 * the rule when the file it finds is another (`dev`, `ino`), so a path swapped after planning
 * never moves a rule.
 */
export interface LandlockRule extends FileIdentity {
  /** The path opened with `O_PATH` as the rule's parent. */
  path: string;
  /** Whether it was a directory when planned (the child refuses anything else). */
  directory: boolean;
  /**
   * A rule that only grants reading (or listing): when its file is gone or another by the time
   * the child applies the plan, the child leaves the rule out (less access, never more) instead
   * of refusing to run. A folder on the way to a hidden location changes all the time (`/etc`,
   * `$HOME`). Rules that grant writing are never optional: a swap there refuses the run.
   */
  optional?: boolean;
  /** The rights granted beneath it, already masked for the ABI and for non-directories. */
  access: number;
  /** The same rights by name, for people. */
  rights: string[];
}

/** The Landlock part of a sandbox plan. */
export interface LandlockPlan {
  /** The ABI the plan was made for. */
  abi: number;
  /** `handled_access_fs`: what is denied unless a rule grants it. */
  handledAccessFs: number;
  /** `handled_access_net`: TCP bind and connect, denied with no rule. */
  handledAccessNet: number;
  /** `scoped`: abstract UNIX sockets and signals kept inside the domain. */
  scoped: number;
  /** The filesystem rules, in the order they are added. */
  rules: LandlockRule[];
  /** The TCP port rules. */
  netRules: LandlockNetRule[];
  /** What the newest ABI would have enforced for this policy that this ABI cannot, in words. */
  dropped: string[];
  /** Whether a ruleset is created at all. */
  apply: boolean;
  /**
   * `full`: everything this tool enforces on the newest ABI; `partial`: something was dropped;
   * `none`: the filesystem (or TCP ports) must be restricted and Landlock cannot do it, so
   * nothing may run.
   */
  enforcement: "full" | "partial" | "none";
}

/**
 * Masks rights for a rule: only what the ABI handles, and only file rights on a non-directory
 * (the kernel refuses directory rights on a file with EINVAL). The one place this is done.
 *
 * @param access The rights wanted.
 * @param handled The ruleset's handled rights.
 * @param isDirectory Whether the rule's path is a directory.
 * @returns The rights to pass to `landlock_add_rule`.
 */
export function maskRuleAccess(access: number, handled: number, isDirectory: boolean): number {
  return access & handled & (isDirectory ? 0xffff : FS_FILE_RIGHTS);
}

/**
 * Plans the Landlock ruleset for a policy on a kernel.
 *
 * @example A read-only policy on ABI 7
 * ```ts
 * import { planLandlock, LANDLOCK_SCOPE_SIGNAL } from "./landlock.ts";
 * import assert from "node:assert/strict";
 *
 * const root = { path: "/", isDirectory: true, dev: 1, ino: 2 };
 * const devNull = { path: "/dev/null", isDirectory: false, dev: 5, ino: 4 };
 * const plan = planLandlock({
 *   abi: 7, restrictWrites: true, restrictNetwork: true, root, writableRoots: [],
 *   devices: [{ target: devNull, access: 0x6 }],
 * });
 * assert.equal(plan.enforcement, "full");
 * assert.equal(plan.scoped & LANDLOCK_SCOPE_SIGNAL, LANDLOCK_SCOPE_SIGNAL);
 * ```
 *
 * @param input The ABI, what to restrict and the paths involved.
 * @returns The plan.
 */
export function planLandlock(input: LandlockInput): LandlockPlan {
  const abi = Math.max(0, Math.min(input.abi, LANDLOCK_ABI_LATEST));
  const restrictReads = input.restrictReads ?? false;
  const restrictFs = input.restrictWrites || restrictReads;
  const wantedFs = restrictFs ? FS_ALL_RIGHTS : 0;
  const wantedNet = input.restrictNetwork
    ? LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP
    : 0;
  const ports = input.restrictNetwork ? input.tcpPorts : undefined;
  const wantsPorts = (ports?.connect.length ?? 0) + (ports?.bind.length ?? 0) > 0;
  // Signals always: as root, `kill -9 -1` from inside must not reach the host. Abstract UNIX
  // sockets unless they are granted: they are how a sandboxed socket reaches a daemon.
  const wantedScope = LANDLOCK_SCOPE_SIGNAL |
    ((input.scopeAbstractUnix ?? input.restrictNetwork) ? LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET : 0);
  const restrictsAnything = restrictFs || input.restrictNetwork;

  const handledAccessFs = wantedFs & fsRightsForAbi(abi);
  const handledAccessNet = abi >= 4 ? wantedNet : 0;
  const scoped = restrictsAnything && abi >= 6 ? wantedScope : 0;

  const dropped: string[] = [];
  const hidingOnly = restrictReads && !input.restrictWrites && (input.hidingOnly ?? false);
  if (restrictsAnything && abi === 0) {
    dropped.push("Landlock is not available on this kernel (ABI 0)");
    if (hidingOnly) {
      dropped.push("credential locations and other terminals stay readable without Landlock");
    }
  } else if (restrictsAnything) {
    const missingFs = wantedFs & ~handledAccessFs;
    if (missingFs) {
      dropped.push(
        `filesystem rights ${fsRightNames(missingFs).join(", ")} are not restricted on ` +
          `Landlock ABI ${abi}`,
      );
    }
    if (wantedNet && !handledAccessNet) {
      dropped.push(`TCP bind/connect are left to seccomp alone on Landlock ABI ${abi} (< 4)`);
    }
    if (!scoped) {
      dropped.push(
        `signals${
          wantedScope & LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET ? " and abstract UNIX sockets" : ""
        } are not scoped on Landlock ABI ${abi} (< 6)`,
      );
    }
  }
  const proxy = (input.proxy ?? false) && input.restrictNetwork;
  const portsImpossible = (wantsPorts || proxy) && !handledAccessNet;
  if (portsImpossible) {
    // Never a silent full network: without Landlock's TCP rules a port cannot be opened alone.
    dropped.push(
      `${
        proxy && !wantsPorts ? "network-domain" : "network-connect-tcp and network-bind-tcp"
      } need${proxy && !wantsPorts ? "s" : ""} Landlock ABI 4 for TCP port rules; ` +
        `this kernel has ABI ${abi}`,
    );
  }

  const rules: LandlockRule[] = [];
  const add = (target: LandlockPathInput, wanted: number) => {
    const access = maskRuleAccess(wanted, handledAccessFs, target.isDirectory);
    if (access) {
      const { path, dev, ino, born } = target;
      const readOnly = (access & ~(FS_READ_RIGHTS | LANDLOCK_ACCESS_FS_READ_DIR)) === 0;
      rules.push({
        path,
        directory: target.isDirectory,
        ...(readOnly ? { optional: true } : {}),
        access,
        rights: fsRightNames(access),
        dev,
        ino,
        ...(born ? { born } : {}),
      });
    }
  };
  if (handledAccessFs) {
    const READ = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
    if (!restrictReads) {
      add(input.root, FS_READ_RIGHTS);
    } else {
      // Writing anywhere but reading only some places: everything but reading beneath /.
      if (!input.restrictWrites) add(input.root, FS_ALL_RIGHTS & ~READ);
      for (const folder of input.listableFolders ?? []) add(folder, LANDLOCK_ACCESS_FS_READ_DIR);
      for (const root of input.readableRoots ?? []) add(root, FS_READ_RIGHTS);
    }
    for (const device of input.devices) add(device.target, device.access);
    for (const root of input.writableRoots) {
      // No device nodes even in a writable root: as root, a block device node is a raw disk.
      add(root, FS_ALL_RIGHTS & ~(LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK));
    }
  }

  const netRules: LandlockNetRule[] = [];
  if (handledAccessNet && ports) {
    for (const port of [...new Set([...ports.connect, ...ports.bind])].sort((a, b) => a - b)) {
      const access = (ports.connect.includes(port) ? LANDLOCK_ACCESS_NET_CONNECT_TCP : 0) |
        (ports.bind.includes(port) ? LANDLOCK_ACCESS_NET_BIND_TCP : 0);
      const rights = [
        ...(access & LANDLOCK_ACCESS_NET_BIND_TCP ? ["bind_tcp"] : []),
        ...(access & LANDLOCK_ACCESS_NET_CONNECT_TCP ? ["connect_tcp"] : []),
      ];
      netRules.push({ port, access, rights });
    }
  }

  const apply = (handledAccessFs | handledAccessNet | scoped) !== 0;
  const enforcement = (restrictFs && !hidingOnly && !handledAccessFs) || portsImpossible
    ? "none"
    : dropped.length
    ? "partial"
    : "full";
  return {
    abi,
    handledAccessFs,
    handledAccessNet,
    scoped,
    rules,
    netRules,
    dropped,
    apply,
    enforcement,
  };
}
