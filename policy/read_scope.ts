/**
 * Reading beneath a folder except beneath some paths inside it. Landlock rules only add
 * access, so a hole is made by granting each sibling along the way to it instead of the folder
 * itself: `/` minus `/root/.ssh` is every entry of `/` but `root`, every entry of `/root` but
 * `.ssh`, and `/` and `/root` themselves to list. Pure: the filesystem is read through a host.
 *
 * @module
 */

import type { FileIdentity, LandlockPathInput } from "./landlock.ts";

/** What is at a path, not following a final symlink. */
export interface EntryInfo extends FileIdentity {
  /** Whether it is a directory. */
  isDirectory: boolean;
  /** Whether it is a symlink (then nothing else is known of its target). */
  isSymlink: boolean;
}

/** What the read-scope planner asks of the filesystem. */
export interface ScopeHost {
  /** What is at a path, not following a final symlink; `undefined` when nothing is there. */
  lstat(path: string): EntryInfo | undefined;
  /** The names in a folder, or `undefined` when it cannot be listed. */
  readDir(path: string): string[] | undefined;
}

/** The rules that read beneath some folders except beneath some paths. */
export interface ReadScope {
  /** Read (and run) beneath each. */
  readable: LandlockPathInput[];
  /** Folders on the way to a hole: their entries can be listed, nothing beneath read by them. */
  listable: LandlockPathInput[];
}

/**
 * The trees of the system itself: programs, their libraries and configuration, the kernel's
 * views and devices, runtime state. No one's private files, and nothing to hand a command to
 * write.
 */
export const SYSTEM_TREES: readonly string[] = [
  "/bin",
  "/sbin",
  "/usr",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
  "/etc",
  "/boot",
  "/dev",
  "/proc",
  "/sys",
  "/run",
];

/**
 * Whether `path` is `folder` or lies beneath it (both canonical).
 * @param path A canonical path.
 * @param folder A canonical path.
 * @returns `true` when `path` is inside or equal to `folder`.
 */
export function isWithin(path: string, folder: string): boolean {
  return path === folder || path.startsWith(folder === "/" ? "/" : `${folder}/`);
}

/**
 * Grants reading beneath each root except beneath each hole. A symlink among the siblings gets
 * no rule (Landlock checks the file a symlink leads to, whose own rules decide), so a link to
 * a hole opens nothing; an entry that vanished while planning is left out; a folder on the way
 * that cannot be listed gets no sibling rules (nothing beneath it is read).
 *
 * @example `/` minus `/r/.ssh`
 * ```ts
 * import { planReadScope } from "./read_scope.ts";
 * import assert from "node:assert/strict";
 *
 * const tree: Record<string, string[]> = { "/": ["r", "usr"], "/r": [".ssh", "notes"] };
 * let ino = 1;
 * const host = {
 *   lstat: (path: string) => ({ isDirectory: path !== "/r/notes", isSymlink: false, dev: 1, ino: ino++ }),
 *   readDir: (path: string) => tree[path],
 * };
 * const root = { path: "/", isDirectory: true, dev: 1, ino: 0 };
 * const scope = planReadScope([root], ["/r/.ssh"], host);
 * assert.deepEqual(scope.readable.map((rule) => rule.path), ["/r/notes", "/usr"]);
 * assert.deepEqual(scope.listable.map((rule) => rule.path), ["/", "/r"]);
 * ```
 *
 * @param roots Where to read beneath, canonical, with what each is.
 * @param holes What not to read beneath, canonical.
 * @param host Where folders are listed.
 * @returns The rules.
 */
export function planReadScope(
  roots: readonly LandlockPathInput[],
  holes: readonly string[],
  host: ScopeHost,
): ReadScope {
  const scope: ReadScope = { readable: [], listable: [] };
  const expand = (folder: LandlockPathInput) => {
    const inside = holes.filter((hole) => hole !== folder.path && isWithin(hole, folder.path));
    if (inside.length === 0) {
      scope.readable.push(folder);
      return;
    }
    scope.listable.push(folder);
    const names = host.readDir(folder.path);
    if (names === undefined) return;
    for (const name of [...names].sort()) {
      const path = folder.path === "/" ? `/${name}` : `${folder.path}/${name}`;
      if (holes.includes(path)) continue;
      const info = host.lstat(path);
      if (info === undefined || info.isSymlink) continue;
      const { isDirectory, dev, ino, born } = info;
      expand({ path, isDirectory, dev, ino, ...(born ? { born } : {}) });
    }
  };
  for (const root of roots) {
    if (holes.some((hole) => isWithin(root.path, hole))) continue;
    expand(root);
  }
  return scope;
}
