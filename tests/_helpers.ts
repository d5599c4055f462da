// Shared by the end-to-end tests: run the CLI as a user would, find tools, make temp folders.

import { fileURLToPath } from "node:url";
import { ROOT_WARNING } from "../policy/plan.ts";
import { createKillCgroup } from "../exec/cgroup.ts";

const CHECKOUT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

/**
 * The CLI's entry, as a path. The CLI refuses a policy that could rewrite its own code, and tests
 * grant /tmp (--full-auto): from a checkout under a shared temporary folder (as CI's clone may
 * be), the CLI runs from a copy of its runtime files outside it, as an installed one would.
 */
export const MAIN: string = (() => {
  const inShared = ["/tmp", "/var/tmp", "/dev/shm"].some((folder) =>
    Deno.realPathSync(CHECKOUT).startsWith(`${folder}/`)
  );
  if (!inShared) return `${CHECKOUT}/main.ts`;
  const copy = scratchOutsideShared();
  Deno.mkdirSync(copy, { recursive: true });
  for (const entry of ["main.ts", "mod.ts", "deno.json", "cli", "exec", "ffi", "policy"]) {
    copyTree(`${CHECKOUT}/${entry}`, `${copy}/${entry}`);
  }
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(copy, { recursive: true });
    } catch {
      // Another test file's copy may be in use; each removes its own.
    }
  });
  return `${copy}/main.ts`;
})();

/**
 * The installed command, as npm lays it out: `bin/llmx-sandbox` (the launcher, copied) beside
 * the CLI's files, and this Deno where the package's dependency would put it (a link). Made on
 * first use, beside MAIN's folder, removed when this process ends.
 * @returns The launcher's path.
 */
export function launcher(): string {
  if (launcherPath) return launcherPath;
  const root = scratchOutsideShared();
  const arch = Deno.build.arch === "aarch64" ? "arm64" : "x64";
  Deno.mkdirSync(`${root}/bin`, { recursive: true });
  Deno.mkdirSync(`${root}/node_modules/@deno/linux-${arch}-glibc`, { recursive: true });
  Deno.copyFileSync(`${CHECKOUT}/bin/llmx-sandbox`, `${root}/bin/llmx-sandbox`);
  Deno.chmodSync(`${root}/bin/llmx-sandbox`, 0o755);
  Deno.symlinkSync(Deno.execPath(), `${root}/node_modules/@deno/linux-${arch}-glibc/deno`);
  const main = MAIN.slice(0, MAIN.lastIndexOf("/"));
  for (const entry of ["main.ts", "mod.ts", "deno.json", "cli", "exec", "ffi", "policy"]) {
    Deno.symlinkSync(`${main}/${entry}`, `${root}/${entry}`);
  }
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(root, { recursive: true });
    } catch {
      // Gone already.
    }
  });
  launcherPath = `${root}/bin/llmx-sandbox`;
  return launcherPath;
}
let launcherPath: string | undefined;

/** A new folder's path (not made) outside the shared temporary folders, for this process. */
function scratchOutsideShared(): string {
  const home = Deno.env.get("HOME");
  const base = home && !home.startsWith("/tmp") ? `${home}/.cache` : "/var/lib";
  return `${base}/llmx-sandbox-tests-${Deno.uid()}/${Deno.pid}-${crypto.randomUUID()}`;
}

function copyTree(from: string, to: string): void {
  if (Deno.statSync(from).isDirectory) {
    Deno.mkdirSync(to, { recursive: true });
    for (const entry of Deno.readDirSync(from)) {
      copyTree(`${from}/${entry.name}`, `${to}/${entry.name}`);
    }
  } else {
    Deno.copyFileSync(from, to);
  }
}

/**
 * All the CLI says on stderr, before the command's own output, when a restricted policy runs
 * with this test's identity: as root, the one warning that --run-as is not used.
 */
export const RESTRICTED_STDERR: string = Deno.uid() === 0
  ? `llmx-sandbox: warning: ${ROOT_WARNING}\n`
  : "";

/**
 * Why a test of killing descendants that left the process group is skipped: without a cgroup v2
 * with `cgroup.kill` that this user may make a child of its own in (`--probe`: process tree
 * kill), only the process group is killed, as the README says. `undefined` where one can be made.
 */
export const NO_KILL_CGROUP: string | undefined = (() => {
  const cgroup = createKillCgroup();
  if (!cgroup) {
    return "no cgroup v2 with cgroup.kill to make a child of here: only the process group dies";
  }
  Deno.removeSync(cgroup.procsPath.replace(/\/cgroup\.procs$/, ""));
  return undefined;
})();

/** Why a test that needs root is skipped, or `undefined` as root. */
export const NOT_ROOT: string | undefined = Deno.uid() === 0 ? undefined : "needs root";

/** What a finished process left. */
export interface Output {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** The two ways the CLI runs a command; end-to-end cases run in both. */
export const MODES: readonly { name: string; flags: readonly string[] }[] = [
  { name: "in place", flags: [] },
  { name: "supervised", flags: ["--timeout", "60000"] },
];

/** Runs any program to completion, capturing its output. */
export async function run(
  program: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; clearEnv?: boolean; stdin?: string } = {},
): Promise<Output> {
  const child = new Deno.Command(program, {
    args: [...args],
    cwd: options.cwd,
    env: options.env,
    clearEnv: options.clearEnv,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const { code, signal, stdout, stderr } = await child.output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, signal, stdout: decode(stdout), stderr: decode(stderr) };
}

/** Runs the CLI (`deno run -A main.ts ARGS`). */
export function runCli(
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<Output> {
  return run(Deno.execPath(), ["run", "--allow-all", "--quiet", MAIN, ...args], options);
}

/** The path of a tool on PATH, or `undefined`: a missing tool makes a visible skip. */
export function which(tool: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    const path = `${dir || "."}/${tool}`;
    try {
      const info = Deno.statSync(path);
      if (info.isFile && (info.mode ?? 0) & 0o111) return path;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** A test's name with the reason it is skipped, so a skip is never silent. */
export function skipReason(name: string, missing: string | undefined): string {
  return missing ? `${name} (skipped: ${missing})` : name;
}

/** A fresh temporary folder, canonical (so it matches the sandbox's resolved roots). */
export function tempDir(): string {
  return Deno.realPathSync(Deno.makeTempDirSync({ prefix: "llmx-test-" }));
}

/** Whether anything (a dangling symlink included) is at a path. */
export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds (with gcc) a library whose constructor appends its process's name to `marker`: an
 * LD_PRELOAD that writes where it should not.
 * @param dir Where to build it.
 * @param marker The file it appends to.
 * @returns The library's path.
 */
export async function buildPreloadMarker(dir: string, marker: string): Promise<string> {
  Deno.writeTextFileSync(
    `${dir}/preload.c`,
    `#include <stdio.h>
__attribute__((constructor)) static void hit(void) {
  char name[64] = "?"; FILE *comm = fopen("/proc/self/comm", "r");
  if (comm) { fscanf(comm, "%63s", name); fclose(comm); }
  FILE *out = fopen("${marker}", "a"); if (out) { fprintf(out, "%s\\n", name); fclose(out); }
}
`,
  );
  const built = await run("gcc", [
    "-shared",
    "-fPIC",
    "-o",
    `${dir}/preload.so`,
    `${dir}/preload.c`,
  ]);
  if (built.code !== 0) throw new Error(`gcc failed: ${built.stderr}`);
  return `${dir}/preload.so`;
}
