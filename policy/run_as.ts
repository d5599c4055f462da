/**
 * `--run-as USER[:GROUP]`: the identity a command runs with, resolved from the text of
 * `/etc/passwd` and `/etc/group`. Pure: the caller reads the files.
 *
 * @module
 */

import { PolicyError } from "./sandbox_policy.ts";

/** The identity a command runs with. */
export interface RunAs {
  /** What was asked for, e.g. `nobody` or `1000:1000`. */
  spec: string;
  /** The user's name, or its number when it has no entry. */
  user: string;
  /** The uid: real, effective and saved. */
  uid: number;
  /** The gid: real, effective and saved. */
  gid: number;
  /** The supplementary groups, ascending: `gid` and every group that lists the user. */
  groups: number[];
}

/** One line of `/etc/passwd`, the fields used. */
export interface PasswdEntry {
  /** The login name. */
  name: string;
  /** The uid. */
  uid: number;
  /** The primary gid. */
  gid: number;
}

/** One line of `/etc/group`, the fields used. */
export interface GroupEntry {
  /** The group's name. */
  name: string;
  /** The gid. */
  gid: number;
  /** The users listed as members. */
  members: string[];
}

/** The largest id: `(uid_t) -1` means "unchanged" to the kernel, so it names nobody. */
const MAX_ID = 0xfffffffe;

function parseId(text: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const id = Number(text);
  return id <= MAX_ID ? id : undefined;
}

function fields(text: string, count: number): string[][] {
  return text.split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => line.split(":"))
    .filter((parts) => parts.length >= count);
}

/**
 * Parses `/etc/passwd`. Lines without a numeric uid and gid (NIS `+` lines, garbage) are left out.
 *
 * @example
 * ```ts
 * import { parsePasswd } from "./run_as.ts";
 * import assert from "node:assert/strict";
 *
 * const entries = parsePasswd("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
 * assert.deepEqual(entries, [{ name: "nobody", uid: 65534, gid: 65534 }]);
 * ```
 *
 * @param text The file's content.
 * @returns The entries, in file order.
 */
export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const [name, , uid, gid] of fields(text, 4)) {
    const u = parseId(uid);
    const g = parseId(gid);
    if (name !== "" && u !== undefined && g !== undefined) entries.push({ name, uid: u, gid: g });
  }
  return entries;
}

/**
 * Parses `/etc/group`. Lines without a numeric gid are left out.
 * @param text The file's content.
 * @returns The entries, in file order.
 */
export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const [name, , gid, members = ""] of fields(text, 3)) {
    const g = parseId(gid);
    if (name === "" || g === undefined) continue;
    entries.push({ name, gid: g, members: members.split(",").filter((member) => member !== "") });
  }
  return entries;
}

/**
 * Resolves `USER[:GROUP]`. `USER` is a name in `/etc/passwd` or a numeric uid; `GROUP` a name
 * in `/etc/group` or a numeric gid, and defaults to the user's primary group. The supplementary
 * groups are the gid and every group that lists the user, as `initgroups(3)` sets them. A
 * numeric uid without an entry must name its group: there is no primary group to fall back on.
 *
 * @example
 * ```ts
 * import { resolveRunAs } from "./run_as.ts";
 * import assert from "node:assert/strict";
 *
 * const passwd = [{ name: "alice", uid: 1000, gid: 1000 }];
 * const groups = [{ name: "docs", gid: 1005, members: ["alice"] }];
 * const who = resolveRunAs("alice", passwd, groups);
 * assert.deepEqual([who.uid, who.gid, who.groups], [1000, 1000, [1000, 1005]]);
 * ```
 *
 * @param spec What the user typed.
 * @param passwd The entries of `/etc/passwd`.
 * @param groups The entries of `/etc/group`.
 * @returns The identity.
 * @throws {PolicyError} `invalid-run-as` when the text is malformed or names nobody.
 */
export function resolveRunAs(
  spec: string,
  passwd: readonly PasswdEntry[],
  groups: readonly GroupEntry[],
): RunAs {
  const invalid = (why: string) =>
    new PolicyError("invalid-run-as", spec, `Invalid --run-as ${JSON.stringify(spec)}: ${why}`);
  const match = /^([^:]+)(?::([^:]+))?$/.exec(spec);
  if (!match) throw invalid("expected USER or USER:GROUP");
  const [, userText, groupText] = match;

  const isNumber = /^[0-9]+$/.test(userText);
  const uid = isNumber ? parseId(userText) : undefined;
  if (isNumber && uid === undefined) throw invalid(`uid ${userText} is out of range`);
  const entry = isNumber
    ? passwd.find((candidate) => candidate.uid === uid)
    : passwd.find((candidate) => candidate.name === userText);
  if (!entry && !isNumber) throw invalid(`no user ${userText} in /etc/passwd`);

  let gid: number;
  if (groupText === undefined) {
    if (!entry) throw invalid(`uid ${userText} has no entry in /etc/passwd: give its group`);
    gid = entry.gid;
  } else if (/^[0-9]+$/.test(groupText)) {
    const id = parseId(groupText);
    if (id === undefined) throw invalid(`gid ${groupText} is out of range`);
    gid = id;
  } else {
    const group = groups.find((candidate) => candidate.name === groupText);
    if (!group) throw invalid(`no group ${groupText} in /etc/group`);
    gid = group.gid;
  }

  const supplementary = new Set([gid]);
  if (entry) {
    for (const group of groups) {
      if (group.members.includes(entry.name)) supplementary.add(group.gid);
    }
  }
  return {
    spec,
    user: entry?.name ?? String(uid),
    uid: entry?.uid ?? uid!,
    gid,
    groups: [...supplementary].sort((a, b) => a - b),
  };
}
