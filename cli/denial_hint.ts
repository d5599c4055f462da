/**
 * The one hint line the supervised CLI adds after a command that failed with what looks like
 * a sandbox denial: which layer, and which permission would allow it.
 *
 * @module
 */

import { dirname, isAbsolute, resolve } from "../policy/_path.ts";
import type { SandboxPlan } from "../policy/plan.ts";

const WRITE_DENIED =
  /(?:^|[\s'"`(])((?:\/|\.{1,2}\/|~)?[^\s:'"`()]+): (?:Permission denied|Read-only file system)/m;
const ANY_WRITE_DENIED = /Permission denied|Read-only file system|EACCES/;
const NETWORK_DENIED =
  /Operation not permitted|Couldn't connect|Could not resolve|Temporary failure in name resolution|Network is unreachable|EPERM/;

/**
 * The hint for a failed command, or `undefined` when its stderr shows no permission error or
 * the policy does not restrict what it hit.
 *
 * @example
 * ```ts
 * import { denialHint } from "./denial_hint.ts";
 * import assert from "node:assert/strict";
 *
 * const plan = { cwd: "/work", writableRoots: [], seccomp: { rules: [{ syscall: "connect" }] } };
 * const hint = denialHint("sh: 1: cannot create /work/out/x.txt: Permission denied\n", plan);
 * assert.match(hint!, /disk-write-folder=\/work\/out/);
 * ```
 *
 * @param stderr The end of the command's stderr.
 * @param plan The plan it ran under (the fields the hint needs).
 * @returns One line without the program prefix, or `undefined`.
 */
export function denialHint(
  stderr: string,
  plan: Pick<SandboxPlan, "cwd" | "writableRoots"> & {
    seccomp: { rules: readonly { syscall: string }[] } | null;
  },
): string | undefined {
  const restrictsNetwork = plan.seccomp?.rules.some((rule) => rule.syscall === "connect") ?? false;
  const path = WRITE_DENIED.exec(stderr)?.[1];
  if (path !== undefined && !path.startsWith("~")) {
    const absolute = isAbsolute(path) ? path : resolve(plan.cwd, path);
    return `hint: Landlock may have refused writing ${absolute} (outside the writable roots); ` +
      `to allow it, add -s disk-write-folder=${dirname(absolute)}`;
  }
  if (ANY_WRITE_DENIED.test(stderr)) {
    return "hint: Landlock may have refused a write outside the writable roots; to allow one, " +
      "add -s disk-write-cwd or -s disk-write-folder=PATH";
  }
  if (restrictsNetwork && NETWORK_DENIED.test(stderr)) {
    return "hint: seccomp may have refused a network socket (the network is off); to allow it, " +
      "add -s network-full-access";
  }
  return undefined;
}
