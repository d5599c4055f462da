/**
 * `deno task compile`: builds the single-file binaries with `deno compile`, verifies each one
 * that this machine can run, and writes a SHA-256 file beside it.
 *
 * ```
 * deno task compile [--target x86_64|aarch64]... [--out-dir DIR]
 * ```
 *
 * Without `--target`: this machine's architecture, which must build and pass verification,
 * then the other one where its runtime can be had (a line says when it cannot). A `--target`
 * given is required. The runtime (`denort`, the Deno binary without its CLI that
 * `deno compile` appends the program to) comes from `DENORT_BIN` when that file is an ELF for
 * the target's architecture, else from Deno's cache, else Deno downloads it.
 *
 * Permissions baked into the binary: all of them. FFI gives full trust anyway (libc can do
 * anything), and the planner and the supervisor read `/proc` (restricted reads grant it,
 * cgroups are found through `/proc/self/mountinfo`), which Deno allows only with --allow-all.
 *
 * Exit codes: 0 built and verified; 2 wrong invocation or a bad DENORT_BIN; 3 no runtime for a
 * required target; 4 `deno compile` failed; 5 a built binary failed verification.
 *
 * @module
 */

import { elfArch, verifyBinary } from "./verify_binary.ts";

/** Exit code: wrong invocation or a bad `DENORT_BIN`. */
export const EXIT_USAGE = 2;
/** Exit code: no runtime for a required target. */
export const EXIT_NO_RUNTIME = 3;
/** Exit code: `deno compile` failed. */
export const EXIT_COMPILE_FAILED = 4;
/** Exit code: a built binary failed verification. */
export const EXIT_VERIFY_FAILED = 5;

type Arch = "x86_64" | "aarch64";
const ARCHES: readonly Arch[] = ["x86_64", "aarch64"];

/** The permissions the binary runs with (see the module comment for why these). */
export const BINARY_PERMISSIONS = ["--allow-all"] as const;

const ROOT = new URL("../", import.meta.url);

class Failure extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

function rustTarget(arch: Arch): string {
  return `${arch}-unknown-linux-gnu`;
}

function say(line: string): void {
  console.error(`compile: ${line}`);
}

interface Options {
  targets: Arch[];
  explicit: boolean;
  outDir: string;
}

function parseOptions(argv: readonly string[]): Options {
  const targets: Arch[] = [];
  let outDir = new URL("dist/", ROOT).pathname;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [name, inline] = arg.startsWith("--") && arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    if (name === "--target" || name === "--out-dir") {
      const value = inline ?? argv[++i];
      if (value === undefined || value === "") {
        throw new Failure(EXIT_USAGE, `${name} needs a value`);
      }
      if (name === "--out-dir") {
        outDir = value;
      } else if ((ARCHES as readonly string[]).includes(value)) {
        if (!targets.includes(value as Arch)) targets.push(value as Arch);
      } else {
        throw new Failure(
          EXIT_USAGE,
          `Unknown --target: ${JSON.stringify(value)} (x86_64 or aarch64)`,
        );
      }
    } else if (name === "-h" || name === "--help") {
      console.log("Usage: deno task compile [--target x86_64|aarch64]... [--out-dir DIR]");
      Deno.exit(0);
    } else {
      throw new Failure(EXIT_USAGE, `Unknown argument: ${JSON.stringify(arg)}`);
    }
  }
  if (targets.length > 0) return { targets, explicit: true, outDir };
  const native = Deno.build.arch as Arch;
  if (!ARCHES.includes(native)) {
    throw new Failure(
      EXIT_USAGE,
      `This machine is ${Deno.build.arch}: give --target x86_64 or aarch64`,
    );
  }
  return {
    targets: [native, ...ARCHES.filter((arch) => arch !== native)],
    explicit: false,
    outDir,
  };
}

/** The architecture `DENORT_BIN` serves, or `undefined` when it is not set. */
function denortBinArch(): { path: string; arch: Arch } | undefined {
  const path = Deno.env.get("DENORT_BIN");
  if (!path) return undefined;
  let arch: ReturnType<typeof elfArch>;
  try {
    if (!Deno.statSync(path).isFile) throw new Error();
    arch = elfArch(path);
  } catch {
    throw new Failure(EXIT_USAGE, `DENORT_BIN=${path} is not a readable file`);
  }
  if (arch === undefined) {
    throw new Failure(EXIT_USAGE, `DENORT_BIN=${path} is not an ELF executable`);
  }
  if (typeof arch === "number") {
    throw new Failure(
      EXIT_USAGE,
      `DENORT_BIN=${path} is an ELF for machine ${arch}, neither x86_64 nor aarch64`,
    );
  }
  return { path, arch };
}

async function denoDir(): Promise<string | undefined> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  if (!output.success) return undefined;
  return (JSON.parse(new TextDecoder().decode(output.stdout)) as { denoDir?: string }).denoDir;
}

/** Where `deno compile` keeps a downloaded runtime (cli/download_deno_binary.rs). */
function cachedRuntimePath(dir: string, arch: Arch): string {
  return `${dir}/dl/release/v${Deno.version.deno}/denort-${rustTarget(arch)}.zip`;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function noRuntimeMessage(arch: Arch): string {
  return `No Deno runtime (denort ${Deno.version.deno} for ${rustTarget(arch)}) can be had here: ` +
    `it is not in Deno's cache and cannot be downloaded; set DENORT_BIN=/path/to/denort (that ` +
    `file, unzipped, from Deno ${Deno.version.deno}'s release) or run deno task compile on a ` +
    `machine with internet access`;
}

async function sha256File(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function removeIfPresent(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** Builds one target; returns a line for the summary. Throws a `Failure` otherwise. */
async function build(
  arch: Arch,
  version: string,
  outDir: string,
  denort: { path: string; arch: Arch } | undefined,
  cacheDir: string | undefined,
): Promise<string> {
  const name = `llmx-sandbox-${arch}-linux`;
  const output = `${outDir}/${name}`;
  const partial = `${outDir}/.${name}.partial`;
  // A failed build must never leave an older binary that looks like this run's result.
  for (const path of [output, `${output}.sha256`, partial]) removeIfPresent(path);

  const env = Deno.env.toObject();
  delete env.DENORT_BIN;
  let source: string;
  if (denort?.arch === arch) {
    env.DENORT_BIN = denort.path;
    source = `DENORT_BIN=${denort.path}`;
  } else if (cacheDir && isFile(cachedRuntimePath(cacheDir, arch))) {
    source = `Deno's cache (${cachedRuntimePath(cacheDir, arch)})`;
  } else {
    source = "a download";
  }
  const compiled = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      "--no-config",
      "--no-lock",
      ...BINARY_PERMISSIONS,
      "--target",
      rustTarget(arch),
      "--output",
      partial,
      new URL("main.ts", ROOT).pathname,
    ],
    clearEnv: true,
    env: { ...env, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!compiled.success) {
    removeIfPresent(partial);
    const text = new TextDecoder().decode(compiled.stderr);
    // Deno fails in "Setting up base binary" when it cannot read or download the runtime.
    if (source === "a download" && /Setting up base binary|denort-/.test(text)) {
      throw new Failure(EXIT_NO_RUNTIME, noRuntimeMessage(arch));
    }
    throw new Failure(EXIT_COMPILE_FAILED, `deno compile failed for ${name}:\n${text.trim()}`);
  }

  say(`built ${name} (llmx-sandbox ${version}) with the runtime from ${source}`);
  const built = elfArch(partial);
  if (built !== arch) {
    removeIfPresent(partial);
    throw new Failure(
      EXIT_VERIFY_FAILED,
      `${name} is an executable for ${built ?? "no known format"}, not ${arch}`,
    );
  }
  let verified: string;
  if (arch === Deno.build.arch) {
    const verdict = await verifyBinary(partial, version);
    if (!verdict.ok) {
      removeIfPresent(partial);
      throw new Failure(EXIT_VERIFY_FAILED, `${name} failed verification: ${verdict.failure}`);
    }
    verified = `verified (${verdict.checks.length} checks)`;
  } else {
    verified = `not run here (an ${arch} ELF; verify it on an ${arch} machine)`;
  }
  Deno.renameSync(partial, output);
  const digest = await sha256File(output);
  Deno.writeTextFileSync(`${output}.sha256`, `${digest}  ${name}\n`);
  return `${output}: ${verified}, sha256 ${digest}`;
}

async function main(argv: readonly string[]): Promise<number> {
  try {
    const options = parseOptions(argv);
    const denort = denortBinArch();
    const { version } = JSON.parse(
      Deno.readTextFileSync(new URL("deno.json", ROOT)),
    ) as { version: string };
    Deno.mkdirSync(options.outDir, { recursive: true });
    const cacheDir = await denoDir();
    const lines: string[] = [];
    for (const [index, arch] of options.targets.entries()) {
      const required = options.explicit || index === 0;
      try {
        lines.push(await build(arch, version, options.outDir, denort, cacheDir));
      } catch (error) {
        if (!(error instanceof Failure) || required || error.code !== EXIT_NO_RUNTIME) throw error;
        lines.push(`${arch}: not built: ${error.message}`);
      }
    }
    for (const line of lines) console.log(line);
    return 0;
  } catch (error) {
    if (!(error instanceof Failure)) throw error;
    say(error.message);
    return error.code;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
