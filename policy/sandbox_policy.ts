/**
 * The sandbox policy: a set of additive permissions and the questions the planner asks of it.
 *
 * @module
 */

import { isAbsolute, resolve } from "./_path.ts";
import {
  formatPermission,
  InvalidPermissionError,
  parsePermission,
  type SandboxPermission,
} from "./permission.ts";
import { supervisesListen } from "./seccomp.ts";
import { formatDomainPattern, parseDomainPattern } from "./network_domain.ts";

/** What a policy holds besides its permissions. */
export interface PolicyOptions {
  /** Paths to hide besides the built-in credential locations (`--hide`). @default none */
  hide?: readonly string[];
  /** Built-in hidden locations to make readable again (`--show`). @default none */
  show?: readonly string[];
  /** Domains the proxy refuses even where a `network-domain` allows them. @default none */
  denyDomains?: readonly string[];
}

/** What `getWritableRootsWithCwd` needs from the system, so that the policy stays pure. */
export interface PathHost {
  /** The user's temporary folder (`$TMPDIR`), or `undefined` when it is not set. */
  tmpdir(): string | undefined;
  /** The canonical path (symlinks resolved), or `undefined` when nothing exists there. */
  realPath(path: string): string | undefined;
  /** The user's home folder (`$HOME`), for `~` in folders; none when absent. */
  home?(): string | undefined;
  /** The target of a symlink as written, or `undefined` when the path is not one. */
  readLink?(path: string): string | undefined;
}

/** Why a policy or a command cannot be planned. */
export type PolicyErrorKind =
  | "missing-folder"
  | "filesystem-root"
  | "hidden-conflict"
  | "invalid-path"
  | "invalid-command"
  | "invalid-run-as"
  | "root-full-write"
  | "kernel-interface"
  | "self-protection";

/**
 * Thrown when a policy or a command cannot be planned: nothing runs.
 *
 * @example
 * ```ts
 * import { PolicyError, SandboxPolicy } from "./sandbox_policy.ts";
 * import assert from "node:assert/strict";
 *
 * const policy = new SandboxPolicy(["disk-write-folder=/"]);
 * assert.throws(() => policy.getWritableRootsWithCwd("/work"), PolicyError);
 * ```
 */
export class PolicyError extends Error {
  /** What went wrong, to switch on. */
  readonly kind: PolicyErrorKind;
  /** The path (or the argument, the `--run-as` text) as it was given. */
  readonly path: string;

  /**
   * Makes the error.
   * @param kind What went wrong.
   * @param path The path (or the argument, the `--run-as` text) as it was given.
   * @param message The full message.
   */
  constructor(kind: PolicyErrorKind, path: string, message: string) {
    super(message);
    this.name = "PolicyError";
    this.kind = kind;
    this.path = path;
  }
}

/** The host of the running process: `Deno.realPathSync` and `$TMPDIR`. */
export const systemPathHost: PathHost = {
  tmpdir: () => Deno.env.get("TMPDIR") || undefined,
  home: () => Deno.env.get("HOME") || undefined,
  // A path the caller may not resolve (a folder it cannot enter) leads nowhere it could use.
  realPath: (path: string) => {
    try {
      return ifExists(() => Deno.realPathSync(path));
    } catch (error) {
      if (error instanceof Deno.errors.PermissionDenied) return undefined;
      throw error;
    }
  },
  readLink: (path: string) => {
    try {
      return Deno.readLinkSync(path);
    } catch {
      return undefined;
    }
  },
};

/**
 * Runs a filesystem lookup; a path that leads nowhere (missing, through a file, a symlink loop)
 * gives `undefined` instead of an error.
 * @param lookup The lookup.
 * @returns Its result, or `undefined`.
 */
export function ifExists<T>(lookup: () => T): T | undefined {
  try {
    return lookup();
  } catch (error) {
    if (
      error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory ||
      error instanceof Deno.errors.FilesystemLoop
    ) return undefined;
    throw error;
  }
}

/**
 * A sandbox policy: exactly the permissions it was made of, nothing implied.
 *
 * @example Ask the questions the planner asks
 * ```ts
 * import { SandboxPolicy } from "./sandbox_policy.ts";
 * import assert from "node:assert/strict";
 *
 * const policy = SandboxPolicy.fullAuto();
 * assert.equal(policy.hasFullDiskReadAccess(), true);
 * assert.equal(policy.hasFullDiskWriteAccess(), false);
 * assert.equal(policy.hasFullNetworkAccess(), false);
 * ```
 */
export class SandboxPolicy {
  /** The permissions, without duplicates, in the order first given. */
  readonly permissions: readonly SandboxPermission[];
  /** Paths hidden beyond the built-in credential locations (`--hide`), as given. */
  readonly hide: readonly string[];
  /** Built-in hidden locations made readable again (`--show`), as given. */
  readonly show: readonly string[];
  /** Domains the proxy refuses even where a `network-domain` allows them, canonical. */
  readonly denyDomains: readonly string[];

  /**
   * Makes a policy of exactly these permissions (duplicates merged).
   * @param permissions Permissions in either form `parsePermission` accepts, or already parsed.
   * @param options What to hide beyond the built-in credential locations, and which of those to
   * show (`~`, relative and absolute paths as for folders); the domains to refuse
   * (`--deny-domain`, patterns as `network-domain` takes them).
   */
  constructor(
    permissions: Iterable<SandboxPermission | string | Record<string, unknown>> = [],
    options: PolicyOptions = {},
  ) {
    const seen = new Map<string, SandboxPermission>();
    for (const value of permissions) {
      // Already-parsed values are checked too: a library caller's object is untrusted input.
      const permission = parsePermission(isPermission(value) ? objectForm(value) : value);
      const key = formatPermission(permission);
      if (!seen.has(key)) seen.set(key, Object.freeze({ ...permission }));
    }
    this.permissions = Object.freeze([...seen.values()]);
    const list = (what: string, value: unknown): readonly string[] => {
      if (value === undefined) return Object.freeze([]);
      if (!Array.isArray(value) || value.some((path) => typeof path !== "string" || path === "")) {
        throw new InvalidPermissionError(value, `${what} must be a list of paths`);
      }
      return Object.freeze([...new Set(value as string[])]);
    };
    this.hide = list("hide", options.hide);
    this.show = list("show", options.show);
    this.denyDomains = Object.freeze(
      [
        ...new Set(
          list("denyDomains", options.denyDomains).map((pattern) => {
            try {
              return formatDomainPattern(parseDomainPattern(pattern));
            } catch (error) {
              throw new InvalidPermissionError(pattern, (error as Error).message);
            }
          }),
        ),
      ],
    );
  }

  /**
   * The same permissions with other options (hidden and shown paths, denied domains); what is
   * not given is kept.
   * @param options What to change.
   * @returns A new policy.
   */
  withPaths(options: PolicyOptions): SandboxPolicy {
    return new SandboxPolicy(this.permissions, {
      hide: options.hide ?? this.hide,
      show: options.show ?? this.show,
      denyDomains: options.denyDomains ?? this.denyDomains,
    });
  }

  /**
   * The domains the command may reach through the built-in proxy (`network-domain`), when the
   * network is not granted as a whole.
   * @returns Canonical patterns; empty without any (or with `network-full-access`).
   */
  getDomains(): string[] {
    if (this.hasFullNetworkAccess()) return [];
    return this.permissions.flatMap((permission) =>
      permission.kind === "network-domain" ? [permission.host] : []
    );
  }

  /**
   * Read access everywhere, no write, no network.
   * @returns The policy.
   */
  static readOnly(): SandboxPolicy {
    return new SandboxPolicy([{ kind: "disk-full-read-access" }]);
  }

  /**
   * Read access everywhere and write access beneath the given folders only.
   * @param roots The writable folders.
   * @returns The policy.
   */
  static readOnlyWithWritableRoots(roots: readonly string[]): SandboxPolicy {
    return new SandboxPolicy([
      { kind: "disk-full-read-access" },
      ...roots.map((folder): SandboxPermission => ({ kind: "disk-write-folder", folder })),
    ]);
  }

  /**
   * Full read, write in the cwd and both temporary folders, no network.
   * @returns The policy.
   */
  static fullAuto(): SandboxPolicy {
    return new SandboxPolicy([
      { kind: "disk-full-read-access" },
      { kind: "disk-write-cwd" },
      { kind: "disk-write-platform-user-temp-folder" },
      { kind: "disk-write-platform-global-temp-folder" },
    ]);
  }

  #has(kind: SandboxPermission["kind"]): boolean {
    return this.permissions.some((permission) => permission.kind === kind);
  }

  /**
   * Whether the policy grants reading the whole filesystem.
   * @returns `true` with `disk-full-read-access`.
   */
  hasFullDiskReadAccess(): boolean {
    return this.#has("disk-full-read-access");
  }

  /**
   * Whether the policy grants writing anywhere.
   * @returns `true` with `disk-full-write-access`.
   */
  hasFullDiskWriteAccess(): boolean {
    return this.#has("disk-full-write-access");
  }

  /**
   * Whether the policy grants the network.
   * @returns `true` with `network-full-access`.
   */
  hasFullNetworkAccess(): boolean {
    return this.#has("network-full-access");
  }

  /**
   * Whether the policy grants UNIX sockets: connecting to named and abstract ones outside
   * (agents, daemons), which no other permission opens.
   * @returns `true` with `network-unix-sockets`.
   */
  hasUnixSockets(): boolean {
    return this.#has("network-unix-sockets");
  }

  /**
   * The folders the command may write beneath, canonicalised once, without duplicates.
   *
   * The cwd is included with `disk-write-cwd`, `$TMPDIR` and `/tmp` only when asked for; a
   * temporary folder that does not exist is skipped, a missing cwd or explicit folder is an
   * error. A root that resolves to `/` is refused: writing everywhere must be asked for by
   * name, with `disk-full-write-access`.
   *
   * @example
   * ```ts
   * import { SandboxPolicy } from "./sandbox_policy.ts";
   * import assert from "node:assert/strict";
   *
   * const host = { tmpdir: () => "/tmp", realPath: (path: string) => path };
   * const roots = SandboxPolicy.fullAuto().getWritableRootsWithCwd("/work", host);
   * assert.deepEqual(roots, ["/work", "/tmp"]);
   * ```
   *
   * @param cwd The command's working folder; relative folders are resolved against it.
   * @param host Where paths are resolved; the running system by default.
   * @returns Canonical absolute paths.
   * @throws {PolicyError} When a root is missing or is `/`.
   */
  getWritableRootsWithCwd(cwd: string, host: PathHost = systemPathHost): string[] {
    const base = resolve(cwd);
    const wanted: { path: string; optional: boolean; what: string }[] = [];
    for (const permission of this.permissions) {
      switch (permission.kind) {
        case "disk-write-cwd":
          wanted.push({ path: base, optional: false, what: "The working folder" });
          break;
        case "disk-write-platform-user-temp-folder": {
          const tmpdir = host.tmpdir();
          if (tmpdir) wanted.push({ path: tmpdir, optional: true, what: "$TMPDIR" });
          break;
        }
        case "disk-write-platform-global-temp-folder":
          wanted.push({ path: "/tmp", optional: true, what: "The global temporary folder" });
          break;
        case "disk-write-folder":
          wanted.push({ path: permission.folder, optional: false, what: "Writable folder" });
          break;
      }
    }
    return resolveFolders(wanted, base, host, true);
  }

  /**
   * The folders `disk-read-folder` grants reading beneath, canonicalised, without duplicates.
   * Only meaningful without `disk-full-read-access`.
   *
   * @param cwd The command's working folder; relative folders are resolved against it.
   * @param host Where paths are resolved; the running system by default.
   * @returns Canonical absolute paths.
   * @throws {PolicyError} When a folder is missing.
   */
  getReadableRoots(cwd: string, host: PathHost = systemPathHost): string[] {
    const wanted = this.permissions.flatMap((permission) =>
      permission.kind === "disk-read-folder"
        ? [{ path: permission.folder, optional: false, what: "Readable folder" }]
        : []
    );
    return resolveFolders(wanted, resolve(cwd), host, false);
  }

  /**
   * Whether a command under this policy must run supervised: the proxy of `network-domain` runs
   * in the supervisor, and so does what answers its `listen()` calls (`supervisesListen`).
   * @returns `true` with `network-domain`, or TCP ports with `network-bind-tcp` or
   * `network-unix-sockets`.
   */
  needsSupervisor(): boolean {
    const ports = this.getTcpPorts();
    // The proxy runs in the supervisor.
    if (this.getDomains().length > 0) return true;
    return supervisesListen({
      restrictNetwork: !this.hasFullNetworkAccess(),
      restrictUnix: !this.hasUnixSockets(),
      tcp: { connect: ports.connect.length > 0, bind: ports.bind.length > 0 },
    });
  }

  /**
   * The TCP ports the policy lets the command connect to and bind, when the rest of the
   * network stays closed (`network-connect-tcp`, `network-bind-tcp`).
   * @returns Sorted ports, without duplicates.
   */
  getTcpPorts(): { connect: number[]; bind: number[] } {
    const ports = (kind: string) =>
      [
        ...new Set(this.permissions.flatMap((permission) =>
          permission.kind === kind && "port" in permission ? [permission.port] : []
        )),
      ].sort((a, b) =>
        a - b
      );
    return { connect: ports("network-connect-tcp"), bind: ports("network-bind-tcp") };
  }
}

/**
 * A path as a user gives it, made absolute: `~` and `~/…` expand to `$HOME`, a relative path is
 * joined to `base` (a canonical folder). Nothing is looked up, and `..` is left for the kernel.
 * @param path The path as given.
 * @param base The folder relative paths are resolved against.
 * @param host Where `$HOME` comes from.
 * @param what What the path is, for messages (`Writable folder`).
 * @returns The absolute path.
 * @throws {PolicyError} `invalid-path` for an empty path or one with a NUL byte, `missing-folder`
 * for `~` without `$HOME`.
 */
export function expandPath(path: string, base: string, host: PathHost, what: string): string {
  if (path === "" || path.includes("\0")) {
    throw new PolicyError("invalid-path", path, `${what} ${JSON.stringify(path)} is not a path`);
  }
  let expanded = path;
  if (path === "~" || path.startsWith("~/")) {
    const home = host.home?.();
    if (!home || !isAbsolute(home)) {
      throw new PolicyError(
        "missing-folder",
        path,
        `${what} ${path} needs $HOME, which is ${home ? `not absolute (${home})` : "not set"}`,
      );
    }
    expanded = home + path.slice(1);
  }
  // Joined, not normalised: `..` after a symlink is the kernel's to resolve, not the text's.
  if (isAbsolute(expanded)) return expanded;
  return base === "/" ? `/${expanded}` : `${base}/${expanded}`;
}

/**
 * Expands `~`, resolves relative paths against `base`, canonicalises once and merges
 * duplicates: paths as users give them. Missing optional folders are skipped.
 */
function resolveFolders(
  wanted: readonly { path: string; optional: boolean; what: string }[],
  base: string,
  host: PathHost,
  writable: boolean,
): string[] {
  const roots: string[] = [];
  for (const { path, optional, what } of wanted) {
    const absolute = expandPath(path, base, host, what);
    const real = host.realPath(absolute);
    if (real === undefined) {
      if (optional) continue;
      const shown = absolute === path ? path : `${path} (${absolute})`;
      throw new PolicyError(
        "missing-folder",
        path,
        `${what} does not exist (or cannot be reached): ${shown}`,
      );
    }
    if (writable && real === "/") {
      throw new PolicyError(
        "filesystem-root",
        path,
        `${what} ${path} resolves to /; ask for disk-full-write-access instead`,
      );
    }
    if (writable && isKernelInterface(real)) {
      throw new PolicyError(
        "kernel-interface",
        path,
        `${what} ${path}${real === path ? "" : ` (${real})`} is in /proc, /sys or /dev: ` +
          "kernel settings and devices (other terminals, disks), not files to write; only " +
          "/dev/shm and /dev/mqueue may be granted there",
      );
    }
    if (!roots.includes(real)) roots.push(real);
  }
  return roots;
}

/**
 * Whether writing beneath a canonical path would write the kernel's settings or devices:
 * `/proc` (`/proc/sys/kernel/core_pattern` runs a helper as root), `/sys`, and `/dev` but its
 * shared-memory folders (tmpfs, where programs keep POSIX shared memory and queues).
 */
export function isKernelInterface(path: string): boolean {
  const within = (folder: string) => path === folder || path.startsWith(`${folder}/`);
  if (within("/dev/shm") || within("/dev/mqueue")) return false;
  return within("/proc") || within("/sys") || within("/dev");
}

function objectForm(permission: SandboxPermission): Record<string, unknown> {
  const { kind, ...argument } = permission;
  return { [kind]: argument };
}

function isPermission(value: unknown): value is SandboxPermission {
  return value !== null && typeof value === "object" && "kind" in value &&
    typeof (value as { kind: unknown }).kind === "string";
}
