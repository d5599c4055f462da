/**
 * The sandbox protects itself: no policy with restricted writes runs while something that a
 * later run of this CLI or library loads before it applies its sandbox (Deno, the libraries it
 * maps, this tool's modules, Deno's caches, the config file) lies inside one of the writable
 * roots, or is reached through one (a symlink or folder on the way there that the command could
 * replace). Otherwise the command rewrites what the next run executes as the caller,
 * unsandboxed. Pure: paths are resolved through a host.
 *
 * @module
 */

import { dirname } from "./_path.ts";
import { isWithin } from "./read_scope.ts";
import { PolicyError } from "./sandbox_policy.ts";

/** Something a later run loads before its sandbox is applied. */
export interface LoadedFile {
  /** The path as the later run names it (absolute; it need not exist yet). */
  path: string;
  /** What it is, for the message, lower case: `the Deno binary`, `the config file`. */
  what: string;
  /** What to do about it, for the message. */
  fix: string;
}

function capitalised(text: string): string {
  return text[0].toUpperCase() + text.slice(1);
}

/** What the check needs of the filesystem. */
export interface ProtectionHost {
  /** The canonical path, or `undefined` when nothing is there. */
  realPath(path: string): string | undefined;
  /** The target of a symlink as written, or `undefined` when the path is not one. */
  readLink?(path: string): string | undefined;
}

/** A protected place, as `--explain` lists it. */
export interface ProtectedPlace {
  /** What it is. */
  what: string;
  /** Where it really is (canonical), or where it would be created. */
  path: string;
}

/**
 * Every place that decides which file a path reads: each component of the path as given, at its
 * real location (its folder resolved, the entry itself not, since a symlink there can be
 * swapped), and the file itself when it exists. A part that does not exist yet counts where it
 * would be created; a symlink whose target does not exist yet, where its target would be (and
 * everything on the way there).
 * @param path An absolute path.
 * @param host The filesystem.
 * @returns Canonical locations, the file's own last.
 */
export function locationsOf(path: string, host: ProtectionHost): string[] {
  return [...new Set(walk(path, host, 0))];
}

/** The kernel's own bound on symlinks followed in one lookup (MAXSYMLINKS). */
const MAX_LINKS = 40;

function walk(path: string, host: ProtectionHost, links: number): string[] {
  const locations: string[] = [];
  let folder = "/";
  const parts = path.split("/").filter((part) => part !== "" && part !== ".");
  for (const [i, part] of parts.entries()) {
    if (part === "..") {
      folder = dirname(folder);
      continue;
    }
    const entry = folder === "/" ? `/${part}` : `${folder}/${part}`;
    locations.push(entry);
    const real = host.realPath(entry);
    const target = real === undefined ? host.readLink?.(entry) : undefined;
    if (target !== undefined && links < MAX_LINKS) {
      // A dangling symlink: what comes after it will be created where it points.
      const rest = parts.slice(i + 1).join("/");
      const pointed = target.startsWith("/") ? target : `${folder}/${target}`;
      return [...locations, ...walk(rest ? `${pointed}/${rest}` : pointed, host, links + 1)];
    }
    folder = real ?? entry;
  }
  if (!locations.includes(folder)) locations.push(folder);
  return locations;
}

/**
 * Refuses a policy whose writable roots hold, or lead to, something a later run loads before
 * its sandbox: a location on the way inside a writable root, or a writable root inside a
 * loaded folder.
 *
 * @example
 * ```ts
 * import { checkLoadedFiles } from "./self_protection.ts";
 * import assert from "node:assert/strict";
 *
 * const host = { realPath: (path: string) => path };
 * const deno = { path: "/tmp/deno", what: "the Deno binary", fix: "install Deno elsewhere" };
 * assert.throws(() => checkLoadedFiles([deno], ["/tmp"], host), /\/tmp\/deno/);
 * assert.deepEqual(checkLoadedFiles([deno], ["/work"], host), [{ what: "the Deno binary", path: "/tmp/deno" }]);
 * ```
 *
 * @param loaded What later runs load.
 * @param writableRoots The policy's writable roots, canonical.
 * @param host The filesystem.
 * @returns What was checked, for `--explain`.
 * @throws {PolicyError} `self-protection`, naming the file, the root and what to do.
 */
export function checkLoadedFiles(
  loaded: readonly LoadedFile[],
  writableRoots: readonly string[],
  host: ProtectionHost,
): ProtectedPlace[] {
  const checked: ProtectedPlace[] = [];
  for (const file of loaded) {
    const locations = locationsOf(file.path, host);
    const real = locations[locations.length - 1];
    for (const root of writableRoots) {
      const through = locations.find((location) => isWithin(location, root));
      const holds = isWithin(root, real) && root !== real ? root : undefined;
      if (through === undefined && holds === undefined) continue;
      const where = through === undefined
        ? `The writable root ${root} lies inside ${file.what} (${real})`
        : through === real
        ? `${capitalised(file.what)} (${real}) ${
          real === root ? "is" : "lies inside"
        } the writable root ${root}`
        : `${capitalised(file.what)} (${file.path}) is reached through ${
          through === root ? "" : `${through}, inside `
        }the writable root ${root}`;
      throw new PolicyError(
        "self-protection",
        file.path,
        `${where}: the command could change what the next run loads before it applies its ` +
          `sandbox; ${file.fix}`,
      );
    }
    if (!checked.some((place) => place.path === real)) {
      checked.push({ what: file.what, path: real });
    }
  }
  return checked;
}
