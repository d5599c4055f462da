/**
 * What a later run of this CLI or library loads before it applies its sandbox, found on this
 * process: its executable and the libraries mapped into it, this tool's modules, Deno's cache,
 * and the CLI's launcher. See policy/self_protection.ts.
 *
 * @module
 */

import type { LoadedFile } from "../policy/self_protection.ts";

/** Set by the installed `llmx-sandbox` launcher to its own path, so that it is protected too. */
export const LAUNCHER_ENV = "LLMX_SANDBOX_LAUNCHER";

/**
 * Set to `1` by the launcher when the caller's working folder was deleted: Deno cannot start in
 * one, so the launcher started it in `/`, and the CLI must not take that for the caller's.
 */
export const LAUNCHER_CWD_GONE_ENV = "LLMX_SANDBOX_CWD_GONE";

let cached: LoadedFile[] | undefined;

/**
 * The files and folders later runs load before their sandbox, gathered once per process.
 * @returns Each with what it is and what to do when a writable root holds it.
 */
export function selfLoadedFiles(): LoadedFile[] {
  if (cached) return cached;
  const deno = Deno.execPath();
  const files: LoadedFile[] = [{
    path: deno,
    what: Deno.build.standalone ? "the llmx-sandbox binary" : "the Deno binary",
    fix: "install it outside the folders the command may write, or grant a narrower folder",
  }];
  const cache = Deno.build.standalone ? undefined : denoDir();
  for (const library of mappedLibraries()) {
    // Deno maps its own caches too: those are the cache's, named below.
    if (library === deno || (cache && library.startsWith(`${cache}/`))) continue;
    files.push({
      path: library,
      what: "a library Deno loads",
      fix: "keep system folders out of the writable roots",
    });
  }
  for (const path of ["/etc/ld.so.preload", "/etc/ld.so.cache"]) {
    files.push({
      path,
      what: "the dynamic loader's list",
      fix: "keep /etc out of the writable roots",
    });
  }
  if (!Deno.build.standalone) {
    const source = new URL("../", import.meta.url);
    if (source.protocol === "file:") {
      files.push({
        // Not node:url's fileURLToPath: loading Node's compatibility layer costs every run ~6 ms.
        path: decodeURIComponent(source.pathname).replace(/\/$/, ""),
        what: "the source folder of llmx-sandbox",
        fix: "install llmx-sandbox (see the README's Install) and run it from outside the " +
          "folders the command may write",
      });
    }
    if (cache) {
      files.push({
        path: cache,
        what: "Deno's cache, DENO_DIR (compiled and downloaded modules)",
        fix: "set DENO_DIR to a folder outside the writable roots, or grant a narrower folder",
      });
    }
  }
  const launcher = Deno.env.get(LAUNCHER_ENV);
  // The installed command the caller's PATH finds, also when this run is not it (a clone).
  const installed = onPath("llmx-sandbox");
  for (const path of new Set([launcher, installed])) {
    if (!path?.startsWith("/")) continue;
    files.push({
      path,
      what: "the llmx-sandbox command",
      fix: "install it outside the folders the command may write",
    });
  }
  if (launcher?.startsWith("/")) {
    // The launcher is a shell script: its shell, and the one program it runs (by full path).
    for (const path of ["/bin/sh", "/usr/bin/readlink", "/bin/readlink"]) {
      files.push({
        path,
        what: "a program the llmx-sandbox command runs",
        fix: "keep system folders out of the writable roots",
      });
    }
  }
  return cached = files;
}

/** The first executable file named `name` in this process's `PATH`'s absolute folders. */
function onPath(name: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir.startsWith("/")) continue;
    try {
      const info = Deno.statSync(`${dir}/${name}`);
      if (info.isFile && (info.mode ?? 0) & 0o111) return `${dir}/${name}`;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** Every file mapped into this process (the executable, libc, the dynamic loader, ...). */
function mappedLibraries(): string[] {
  let maps: string;
  try {
    maps = Deno.readTextFileSync("/proc/self/maps");
  } catch {
    return [];
  }
  const paths = new Set<string>();
  for (const line of maps.split("\n")) {
    // "start-end perms offset dev inode   /path"
    const path = line.split(/\s+/).slice(5).join(" ");
    if (path.startsWith("/") && !path.endsWith(" (deleted)") && !path.startsWith("/dev/")) {
      paths.add(path);
    }
  }
  return [...paths];
}

/** Where Deno keeps its caches, as Deno finds it (DENO_DIR, else the XDG cache folder). */
function denoDir(): string | undefined {
  const explicit = Deno.env.get("DENO_DIR");
  if (explicit) return explicit.startsWith("/") ? explicit : `${Deno.cwd()}/${explicit}`;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  if (xdg?.startsWith("/")) return `${xdg}/deno`;
  const home = Deno.env.get("HOME");
  return home?.startsWith("/") ? `${home}/.cache/deno` : undefined;
}
