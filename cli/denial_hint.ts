/**
 * The one hint line the supervised CLI adds after a command that failed with what looks like
 * a sandbox denial: which layer, and a permission that would be accepted and would make a
 * difference, or nothing. A path in a hint comes from the command's own output, which the
 * command controls: the hint says so, and never suggests what the sandbox would refuse or what
 * must stay closed (`/`, a home folder, a credential location, this tool's own files).
 *
 * @module
 */

import { dirname, isAbsolute, resolve } from "../policy/_path.ts";
import type { SandboxPlan } from "../policy/plan.ts";
import { isWithin, SYSTEM_TREES } from "../policy/read_scope.ts";
import { HOME_SECRETS } from "../policy/secrets.ts";

/** The plan fields a hint looks at. */
export type HintPlan = Pick<
  SandboxPlan,
  | "cwd"
  | "writableRoots"
  | "readableRoots"
  | "hidden"
  | "hiddenHomes"
  | "protected"
  | "env"
  | "permissions"
>;

const DENIED =
  /Permission denied|Read-only file system|\bEACCES\b|\bEPERM\b|Operation not permitted/;
/** A path in quotes of any kind, or a bare path ending at a colon or the end of a line. */
const QUOTED = /[‘'"`]((?:\/|\.{1,2}\/|~\/)?[^‘’'"`\s]*\/?[^‘’'"`\s]*)[’'"`]/g;
// Relative paths must hold a slash and no "=" (not an option): "out/x.txt", not "a=b/c".
const BARE =
  /(?:^|[\s(])((?:\/|\.{1,2}\/|~\/)[^\s:'"`‘’()=]*|[^\s:'"`‘’()/=~-][^\s:'"`‘’()/=]*\/[^\s:'"`‘’()=]*)(?=:|\s|$)/g;
const NETWORK =
  /EAI_AGAIN|Temporary failure in name resolution|Could not resolve|getaddrinfo|Name or service not known|Network is unreachable|No address associated with hostname|ENETUNREACH|ENOTFOUND/;
const SOCKET_DENIED =
  /socket.*(Operation not permitted|EPERM|Permission denied)|(connect|bind).*(Operation not permitted|Permission denied)/i;

/**
 * Never offered as writable, nor anything beneath: the system, whose files other programs run
 * or read as configuration (`/etc/cron.d`, `/usr/bin`, `/opt`), the kernel's views and devices,
 * and the homes (the caller's own is checked apart). A path the command printed must not lead a
 * reader to let it write where the next program run as the caller, or as root, picks it up.
 */
const NEVER_BENEATH = [...SYSTEM_TREES, "/opt", "/var", "/home", "/root", "/snap", "/nix"];
/** Exceptions inside those: scratch space. */
const OFFERED_BENEATH = ["/var/tmp", "/dev/shm"];

/**
 * The hint for a failed command, or `undefined` when there is nothing right to say.
 *
 * @example
 * ```ts
 * import { denialHint } from "./denial_hint.ts";
 * import assert from "node:assert/strict";
 *
 * const plan = {
 *   cwd: "/work", writableRoots: [], readableRoots: [], hidden: [], hiddenHomes: [],
 *   protected: [], env: [],
 *   permissions: ["disk-full-read-access"],
 * };
 * const hint = denialHint("sh: 1: cannot create /work/out/x.txt: Permission denied\n", plan);
 * assert.match(hint!, /disk-write-cwd/);
 * ```
 *
 * @param stderr The end of the command's stderr.
 * @param plan The plan it ran under.
 * @returns One line without the program prefix, or `undefined`.
 */
export function denialHint(stderr: string, plan: HintPlan): string | undefined {
  const lines = stderr.split("\n");
  const networkFailed = lines.some((line) => NETWORK.test(line) || SOCKET_DENIED.test(line));
  if (networkFailed && !plan.permissions.includes("network-full-access")) {
    return networkHint(plan);
  }
  const denied = lines.filter((line) => DENIED.test(line));
  if (denied.length === 0) return undefined;
  for (const line of denied) {
    for (const path of pathsIn(line)) {
      const hint = pathHint(path, plan);
      if (hint !== null) return hint;
    }
  }
  return undefined;
}

function networkHint(plan: HintPlan): string {
  const ports = plan.permissions.some((permission) =>
    permission.startsWith("network-connect-tcp=")
  );
  return "hint: the network is off in this sandbox and the command failed to reach it" +
    (ports ? " (network-connect-tcp opens TCP ports, not DNS: names cannot be resolved)" : "") +
    "; to allow it, add -s network-full-access";
}

/** Candidate paths in a line, quoted ones first (GNU tools quote with ‘…’). */
function pathsIn(line: string): string[] {
  const found: string[] = [];
  for (const match of line.matchAll(QUOTED)) found.push(match[1]);
  for (const match of line.matchAll(BARE)) found.push(match[1]);
  return [...new Set(found.filter((path) => path !== "" && !/^[a-z]+:\/\//i.test(path)))];
}

/**
 * The hint for one path the command names: `null` when the path says nothing (look further),
 * `undefined` when the right thing is to say nothing at all.
 */
function pathHint(given: string, plan: HintPlan): string | undefined | null {
  const home = envValue(plan, "HOME");
  let path: string;
  if (given.startsWith("~/")) {
    if (!home) return null;
    path = resolve(home, given.slice(2));
  } else {
    path = isAbsolute(given) ? resolve(given) : resolve(plan.cwd, given);
  }
  const source = `(${given} is a path from the command's output)`;
  const hidden = plan.hidden.find((place) => isWithin(path, place));
  if (hidden !== undefined && plan.hiddenHomes.includes(hidden)) {
    // A whole home is not a credential location to open: no --show to offer.
    return `hint: ${path} is in another user's home folder, hidden as a whole ${source}`;
  }
  if (hidden !== undefined) {
    return `hint: ${path} is hidden (it holds credentials) ${source}; to let the command read ` +
      `it, add --show ${hidden}`;
  }
  // Inside a writable root the sandbox allows writing: the error is the system's, not ours.
  if (plan.writableRoots.some((root) => isWithin(path, root))) return undefined;
  // "in /tmp/" names a folder; "/data/x.json" a file in one.
  const folder = given.endsWith("/") ? path : dirname(path);
  const restrictedReads = !plan.permissions.includes("disk-full-read-access");
  if (restrictedReads && !plan.readableRoots.some((root) => isWithin(path, root))) {
    if (!writable(folder, plan, home)) return undefined;
    return `hint: reads are restricted (--restrict-reads) and ${path} is outside what the ` +
      `command may read or write ${source}; to allow reading there, add -s ` +
      `disk-read-folder=${folder} (writing: -s disk-write-folder=${folder})`;
  }
  const permission = writePermission(folder, plan, home);
  if (permission === undefined) {
    return `hint: Landlock refused writing ${path} ${source}; that folder cannot be made ` +
      "writable safely (it is, or holds, the system, a home folder, credentials or this tool)";
  }
  return `hint: Landlock may have refused writing ${path} ${source}, outside the writable ` +
    `roots; to allow it, add -s ${permission}`;
}

/** The permission that makes `folder` writable, when one would be accepted and is safe. */
function writePermission(folder: string, plan: HintPlan, home?: string): string | undefined {
  if (isWithin(folder, plan.cwd) && !plan.permissions.includes("disk-write-cwd")) {
    return writable(plan.cwd, plan, home) ? "disk-write-cwd" : undefined;
  }
  // The temporary folders themselves by their names; a folder inside one, narrower.
  if (folder === "/tmp") {
    return writable("/tmp", plan, home) ? "disk-write-platform-global-temp-folder" : undefined;
  }
  const tmpdir = envValue(plan, "TMPDIR");
  if (tmpdir && isAbsolute(tmpdir) && folder === resolve(tmpdir)) {
    return writable(resolve(tmpdir), plan, home)
      ? "disk-write-platform-user-temp-folder"
      : undefined;
  }
  return writable(folder, plan, home) ? `disk-write-folder=${folder}` : undefined;
}

/** Whether granting writes beneath `folder` would be accepted and keep what must stay closed. */
function writable(folder: string, plan: HintPlan, home?: string): boolean {
  if (folder === "/") return false;
  const tmpdir = envValue(plan, "TMPDIR");
  const offered = [
    plan.cwd,
    ...OFFERED_BENEATH,
    ...(home && isAbsolute(home) ? [resolve(home)] : []),
    ...(tmpdir && isAbsolute(tmpdir) ? [resolve(tmpdir)] : []),
  ].filter((base) => base !== "/");
  if (
    NEVER_BENEATH.some((system) => isWithin(folder, system)) &&
    !offered.some((base) => isWithin(folder, base))
  ) {
    return false;
  }
  if (home && isWithin(home, folder)) return false;
  // A credential location that does not exist yet is hidden from nothing: never offered.
  const credentials = home && isAbsolute(home)
    ? HOME_SECRETS.map((secret) => resolve(home, secret.path))
    : [];
  if (credentials.some((place) => isWithin(folder, place) || isWithin(place, folder))) {
    return false;
  }
  if (plan.hidden.some((place) => isWithin(place, folder) || isWithin(folder, place))) {
    return false;
  }
  return !plan.protected.some((place) =>
    isWithin(place.path, folder) || isWithin(folder, place.path)
  );
}

function envValue(plan: HintPlan, key: string): string | undefined {
  const entry = plan.env.find((item) => item.startsWith(`${key}=`));
  return entry?.slice(key.length + 1) || undefined;
}
