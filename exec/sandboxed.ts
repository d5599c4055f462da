/**
 * The library's way to run a command: `execSandboxed` to completion with captured output,
 * `spawnSandboxed` with streams. The command, its arguments and its environment are treated as
 * untrusted input.
 *
 * @module
 */

import { InvalidPermissionError, type SandboxPermission } from "../policy/permission.ts";
import { PolicyError, SandboxPolicy } from "../policy/sandbox_policy.ts";
import { type CommandSpec, planSandbox, type SandboxPlan } from "../policy/plan.ts";
import type { LoadedFile } from "../policy/self_protection.ts";
import { LAUNCHER_CWD_GONE_ENV, LAUNCHER_ENV, selfLoadedFiles } from "./self_files.ts";
import { InvalidLimitError, type ResourceLimits, validateLimits } from "../policy/limits.ts";
import { limitFacts } from "./limits.ts";
import { probeKernel } from "./kernel.ts";
import { SandboxError } from "./errors.ts";
import { type ExecStatus, MAX_TIMEOUT_MS, type SandboxedProcess, spawnPlan } from "./spawn.ts";
import type { NetworkDecision } from "./proxy.ts";
import { looksSandboxDenied } from "./sandbox_denied.ts";
import { buildEnvironment, validEnvEntry } from "../policy/environment.ts";
import { resolveRunAsOnSystem } from "./run_as.ts";
import { join } from "../policy/_path.ts";

/** A policy, or the permissions to make one from (strings or JSON objects). */
export type PolicyInput =
  | SandboxPolicy
  | readonly (SandboxPermission | string | Record<string, unknown>)[];

/** What to run, shared by `execSandboxed` and `spawnSandboxed`. */
export interface SandboxParams {
  /** The program and its arguments, never a shell string; the program is searched in `PATH`. */
  command: readonly string[];
  /** The working folder. @default Deno.cwd() */
  cwd?: string;
  /**
   * The command's whole environment, given to `execve` only, used as given.
   * @default the caller's (`Deno.env`), without the variables whose names look like
   * credentials (`KEY`, `SECRET`, `TOKEN`, `PASSWORD`, `CREDENTIAL`, `AUTH`), unless `inheritEnv`
   */
  env?: Record<string, string>;
  /**
   * Keep only `PATH`, `HOME`, `TERM`, `LANG`, `USER` and `TMPDIR` of `env` (the CLI's
   * `--clear-env`). @default false
   */
  clearEnv?: boolean;
  /** Without `env`: keep the caller's credentials too (the CLI's `--inherit-env`). @default false */
  inheritEnv?: boolean;
  /**
   * Then these, in order (the CLI's `--env`): `KEY` copies the caller's variable (a credential
   * too), `KEY=VALUE` sets one. @default none
   */
  envEntries?: readonly string[];
  /** Kill the command and everything it started after this many milliseconds. @default undefined (never) */
  timeoutMs?: number;
  /** Aborting kills the command and everything it started. @default undefined */
  signal?: AbortSignal;
  /**
   * Refuse to run unless the policy is fully enforced (nothing dropped for this kernel's
   * Landlock ABI); by default a partially enforced sandbox runs, and the result says what was
   * dropped. @default false
   */
  requireFull?: boolean;
  /**
   * Run the command as another user, `USER[:GROUP]` (names from `/etc/passwd` and `/etc/group`,
   * or numbers); only a caller running as root may. The command gets that uid, gid and the
   * user's supplementary groups; its environment stays as given.
   * @default undefined (the caller's identity)
   */
  runAs?: string;
  /** Paths to hide besides the built-in credential locations (`--hide`). @default none */
  hide?: readonly string[];
  /** Built-in hidden locations to make readable again (`--show`). @default none */
  show?: readonly string[];
  /**
   * With `network-domain` permissions: domains the proxy refuses even where one allows them
   * (`--deny-domain`; the same patterns). @default none
   */
  denyDomains?: readonly string[];
  /**
   * With `network-domain`: called once per host and port the proxy refused, as it happens (the
   * CLI prints a line naming the permission that would allow it). @default undefined
   */
  onNetworkRefused?: (decision: NetworkDecision) => void;
  /**
   * For programs that hand the command their own terminal through `spawnPlan` with inherited
   * streams (as the CLI does): the terminal devices it may reopen, and whether it keeps the
   * controlling terminal (`/dev/tty`; only a command run in place, without a supervisor, has
   * one). `execSandboxed` and `spawnSandboxed` pipe every stream and give none.
   * @default undefined (no terminal)
   */
  terminal?: CommandSpec["terminal"];
  /**
   * Resource limits for the command and everything it starts: `memoryBytes`, `processes` (a
   * cap on tasks; 0 lifts the default cap), `cpuMs` (CPU time), `fileSizeBytes`, `openFiles`.
   * Each is enforced by a cgroup where the system allows, else per process by an rlimit; the
   * plan's `limits` says which. @default the default process cap only
   */
  limits?: ResourceLimits;
  /**
   * What your program loads before it runs sandboxed commands (its own code, its config): a
   * policy that could write one of these, or a place on the way to it, is refused, as it is for
   * this library's own files (Deno, its libraries, these modules, Deno's cache). Paths are
   * absolute. @default none
   */
  protect?: readonly (string | LoadedFile)[];
}

/** Parameters of `execSandboxed`. */
export interface ExecParams extends SandboxParams {
  /**
   * What the command reads on stdin: all of it at once, or a stream read as the command reads
   * (and no longer once it has ended, or the timeout killed it).
   * @default undefined (nothing: stdin is /dev/null)
   */
  stdin?: string | Uint8Array | ReadableStream<Uint8Array>;
  /** The most bytes kept per stream; the rest is read and dropped. @default 1048576 (1 MiB) */
  maxOutputBytes?: number;
}

/** Parameters of `spawnSandboxed`. */
export interface SpawnParams extends SandboxParams {
  /** `"piped"` to write the command's stdin. @default "null" */
  stdin?: "null" | "piped";
}

/** The result of `execSandboxed`. */
export interface ExecResult extends ExecStatus {
  /** The command's stdout, decoded as UTF-8 (up to `maxOutputBytes`). */
  stdout: string;
  /** The command's stderr, decoded as UTF-8 (up to `maxOutputBytes`). */
  stderr: string;
  /** The command's stdout as bytes. */
  stdoutBytes: Uint8Array;
  /** The command's stderr as bytes. */
  stderrBytes: Uint8Array;
  /** Whether either stream went past `maxOutputBytes` and was cut. */
  truncated: boolean;
  /** A hint that the sandbox stopped the command; see `looksSandboxDenied`. */
  sandboxDenied: boolean;
  /** `full`, or `partial` when this kernel's Landlock ABI could not enforce everything. */
  enforcement: "full" | "partial";
  /** What was not enforced on this kernel, in words (empty when `full`). */
  dropped: string[];
}

/** Default `maxOutputBytes`. */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;

/**
 * The plan the child would apply for this command and policy, without running anything: the
 * same data `--explain` prints and the child receives. A plan that cannot run on this kernel
 * is returned too, with `runnable: false` and its reasons in `landlock.dropped`.
 *
 * @example
 * ```ts
 * import { explainSandbox } from "./sandboxed.ts";
 * import assert from "node:assert/strict";
 *
 * const plan = explainSandbox({ command: ["make"], cwd: "/" }, ["disk-full-read-access"]);
 * assert.deepEqual(plan.writableRoots, []);
 * assert.ok(plan.seccomp!.rules.some((rule) => rule.syscall === "connect"));
 * ```
 *
 * @param params What to run.
 * @param policy The policy.
 * @returns The plan.
 * @throws {SandboxError} `invalid-policy`, `missing-path` or `invalid-command` (also for a
 * `runAs` that names nobody, or a caller that is not root).
 */
export function explainSandbox(params: SandboxParams, policy: PolicyInput): SandboxPlan {
  if (
    !Array.isArray(params.command) ||
    params.command.some((arg: unknown) => typeof arg !== "string")
  ) {
    throw new SandboxError("invalid-command", "The command must be an array of strings");
  }
  if (
    params.timeoutMs !== undefined &&
    !(Number.isFinite(params.timeoutMs) && params.timeoutMs > 0 &&
      params.timeoutMs <= MAX_TIMEOUT_MS)
  ) {
    throw new SandboxError(
      "invalid-command",
      `Invalid timeoutMs: ${params.timeoutMs} (from 1 to ${MAX_TIMEOUT_MS})`,
    );
  }
  if (params.runAs !== undefined && typeof params.runAs !== "string") {
    throw new SandboxError("invalid-command", "runAs must be a string: USER or USER:GROUP");
  }
  for (const file of params.protect ?? []) {
    const path = typeof file === "string" ? file : file?.path;
    if (typeof path !== "string" || path === "" || path.includes("\0")) {
      throw new SandboxError("invalid-command", `Invalid protect entry: ${JSON.stringify(file)}`);
    }
  }
  if (params.cwd !== undefined && (typeof params.cwd !== "string" || params.cwd.includes("\0"))) {
    throw new SandboxError("invalid-command", `Invalid cwd: ${JSON.stringify(params.cwd)}`);
  }
  // A relative one is resolved here, so that a deleted working folder of ours is named as such.
  const cwd = params.cwd !== undefined && /^[/~]/.test(params.cwd)
    ? params.cwd
    : join(callerCwd(), params.cwd ?? ".");
  try {
    const given = policy instanceof SandboxPolicy ? policy : new SandboxPolicy(policy);
    const resolved =
      params.hide === undefined && params.show === undefined && params.denyDomains === undefined
        ? given
        : given.withPaths({
          hide: [...given.hide, ...(params.hide ?? [])],
          show: [...given.show, ...(params.show ?? [])],
          denyDomains: [...given.denyDomains, ...(params.denyDomains ?? [])],
        });
    const runAs = params.runAs === undefined ? undefined : resolveRunAsOnSystem(params.runAs);
    const kernel = probeKernel();
    return planSandbox(
      resolved,
      {
        argv: params.command,
        cwd,
        ...commandEnvironment(params),
        runAs,
        terminal: params.terminal,
        limits: params.limits === undefined ? undefined : validateLimits(params.limits),
      },
      { ...kernel, limits: limitFacts({ uid: runAs?.uid ?? kernel.uid }) },
      undefined,
      [
        ...selfLoadedFiles(),
        ...(params.protect ?? []).map((file) =>
          typeof file === "string"
            ? { path: file, what: "a file you protect", fix: "grant a narrower folder" }
            : file
        ),
      ],
    );
  } catch (error) {
    if (error instanceof InvalidPermissionError) {
      throw new SandboxError("invalid-policy", error.message, { cause: error });
    }
    if (error instanceof InvalidLimitError) {
      throw new SandboxError("invalid-command", error.message, { cause: error });
    }
    if (error instanceof PolicyError) {
      const kind = error.kind === "missing-folder"
        ? "missing-path"
        : error.kind === "invalid-command" || error.kind === "invalid-run-as"
        ? "invalid-command"
        : "invalid-policy";
      throw new SandboxError(kind, error.message, { cause: error });
    }
    if (error instanceof Deno.errors.NotFound && callerCwdGone()) {
      // A relative path of the policy, resolved against a folder that is gone.
      throw new SandboxError("missing-path", CWD_GONE, { cause: error });
    }
    throw error;
  }
}

const CWD_GONE = "This process's working folder was deleted: pass an absolute cwd, and absolute " +
  "paths in the policy";

function callerCwdGone(): boolean {
  try {
    Deno.cwd();
    return false;
  } catch {
    return true;
  }
}

/** This process's working folder; a `SandboxError` when it was deleted. */
function callerCwd(): string {
  try {
    return Deno.cwd();
  } catch (error) {
    throw new SandboxError("missing-path", CWD_GONE, { cause: error });
  }
}

/** The command's environment from the parameters, and the credentials left out of it. */
function commandEnvironment(
  params: SandboxParams,
): { env: Record<string, string>; envDropped: string[] } {
  for (const entry of params.envEntries ?? []) {
    if (typeof entry !== "string" || !validEnvEntry(entry)) {
      throw new SandboxError(
        "invalid-command",
        `Invalid envEntries entry: ${JSON.stringify(entry)}`,
      );
    }
  }
  const { env, dropped } = buildEnvironment(params.env ?? callerEnvironment(), {
    clear: params.clearEnv ?? false,
    // An environment given explicitly is the caller's choice: used as given.
    inherit: params.env !== undefined || (params.inheritEnv ?? false),
    entries: params.envEntries,
  });
  return { env, envDropped: dropped };
}

/**
 * This process's environment as its own caller gave it: without the launcher's note of where it
 * is, and without what Deno adds when `node` is not on `PATH` (a folder of Node.js shims put
 * first on `PATH`, and `DENO_NODE_SHIM_ACTIVE`): `PATH` is then the one this process was started
 * with (from `/proc/self/environ`, which `setenv` does not change), unset when it had none.
 */
function callerEnvironment(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env[LAUNCHER_ENV];
  delete env[LAUNCHER_CWD_GONE_ENV];
  const [first, ...rest] = (env.PATH ?? "").split(":");
  if (env.DENO_NODE_SHIM_ACTIVE !== "1" || !first.endsWith("/node_compat_bin")) return env;
  let initial: string[] | undefined;
  try {
    initial = Deno.readTextFileSync("/proc/self/environ").split("\0");
  } catch {
    // No /proc: Deno put its folder before the PATH it was given.
  }
  const given = (name: string) =>
    initial?.find((entry) => entry.startsWith(`${name}=`))?.slice(name.length + 1);
  const path = initial ? given("PATH") : rest.join(":");
  if (path === undefined) delete env.PATH;
  else env.PATH = path;
  if (given("DENO_NODE_SHIM_ACTIVE") === undefined) delete env.DENO_NODE_SHIM_ACTIVE;
  return env;
}

/**
 * Plans a command under a policy and checks that it may run here.
 *
 * @example
 * ```ts
 * import { prepareSandbox } from "./sandboxed.ts";
 * import assert from "node:assert/strict";
 *
 * const plan = prepareSandbox({ command: ["true"], cwd: "/" }, ["disk-full-read-access"]);
 * assert.equal(plan.runnable, true);
 * ```
 *
 * @param params What to run.
 * @param policy The policy.
 * @returns The plan, runnable.
 * @throws {SandboxError} As `explainSandbox`, and `landlock-unavailable`, or
 * `partially-enforced` with `requireFull`.
 */
export function prepareSandbox(params: SandboxParams, policy: PolicyInput): SandboxPlan {
  const plan = explainSandbox(params, policy);
  checkRunnable(plan, params.requireFull ?? false);
  return plan;
}

/**
 * Checks that a plan may run here, as `prepareSandbox` does after planning.
 *
 * @example
 * ```ts
 * import { checkRunnable, explainSandbox } from "./sandboxed.ts";
 *
 * const plan = explainSandbox({ command: ["true"], cwd: "/" }, ["disk-full-read-access"]);
 * checkRunnable(plan, false); // throws on a kernel without Landlock
 * ```
 *
 * @param plan The plan.
 * @param requireFull Whether partial enforcement is refused too.
 * @throws {SandboxError} `landlock-unavailable`, or `partially-enforced` with `requireFull`.
 */
export function checkRunnable(plan: SandboxPlan, requireFull: boolean): void {
  if (!plan.runnable) {
    const fix = plan.landlock.abi === 0
      ? 'Enable Landlock (CONFIG_SECURITY_LANDLOCK=y and "landlock" in the lsm= boot ' +
        "parameter; see --probe), or grant disk-full-read-access and disk-full-write-access"
      : "See --probe for what this kernel offers";
    throw new SandboxError(
      "landlock-unavailable",
      `Cannot apply the sandbox: ${plan.landlock.dropped.join("; ")}. ${fix}; nothing was run`,
    );
  }
  if (plan.limits.unenforceable.length > 0) {
    const names = plan.limits.limits.filter((limit) =>
      plan.limits.unenforceable.includes(limit.name)
    );
    throw new SandboxError(
      "limit-unavailable",
      `Cannot enforce ${names.map((limit) => `${limit.option} ${limit.shown}`).join(", ")} ` +
        `here (${names.flatMap((limit) => limit.notes).join("; ")}); nothing was run`,
    );
  }
  if (requireFull && !plan.limits.fullyEnforced) {
    const partial = plan.limits.limits.filter((limit) =>
      !limit.isDefault && limit.enforcement !== "full"
    );
    throw new SandboxError(
      "partially-enforced",
      `Refusing to run partially enforced (full enforcement was required): ` +
        partial.map((limit) => `${limit.option} ${limit.shown} holds per process only`).join(
          "; ",
        ) + "; nothing was run",
    );
  }
  if (requireFull && plan.landlock.enforcement !== "full") {
    throw new SandboxError(
      "partially-enforced",
      `Refusing to run partially enforced (full enforcement was required): ` +
        `${plan.landlock.dropped.join("; ")}; nothing was run`,
    );
  }
}

/**
 * Starts a command in the sandbox and returns at once, with its output as streams.
 *
 * @example Stream a command's output
 * ```ts
 * import { spawnSandboxed } from "./sandboxed.ts";
 * import assert from "node:assert/strict";
 *
 * const child = spawnSandboxed({ command: ["echo", "hi"], cwd: "/" }, ["disk-full-read-access"]);
 * const text = await new Response(child.stdout).text();
 * await new Response(child.stderr).text();
 * assert.equal(text, "hi\n");
 * assert.equal((await child.status).exitCode, 0);
 * ```
 *
 * @param params What to run.
 * @param policy The policy.
 * @returns The running command; read (or cancel) both streams.
 * @throws {SandboxError} When the command cannot be run in this sandbox (nothing ran).
 */
export function spawnSandboxed(params: SpawnParams, policy: PolicyInput): SandboxedProcess {
  const plan = prepareSandbox(params, policy);
  return spawnPlan(plan, {
    timeoutMs: params.timeoutMs,
    signal: params.signal,
    stdin: params.stdin ?? "null",
    onNetworkRefused: params.onNetworkRefused,
  });
}

/**
 * Runs a command in the sandbox to completion and returns its output.
 *
 * @example A write outside the writable roots is denied
 * ```ts
 * import { execSandboxed } from "./sandboxed.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const result = await execSandboxed(
 *   { command: ["sh", "-c", "echo hi > denied.txt"], cwd: dir },
 *   ["disk-full-read-access"],
 * );
 * assert.notEqual(result.exitCode, 0);
 * assert.equal(result.sandboxDenied, true);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param params What to run.
 * @param policy The policy.
 * @returns How it ended, with its output.
 * @throws {SandboxError} When the command cannot be run in this sandbox (nothing ran).
 */
export async function execSandboxed(params: ExecParams, policy: PolicyInput): Promise<ExecResult> {
  checkMaxOutputBytes(params);
  return await execPlan(prepareSandbox(params, policy), params);
}

function checkMaxOutputBytes(params: ExecParams): void {
  const max = params.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  if (!Number.isSafeInteger(max) || max < 0) {
    throw new SandboxError("invalid-command", `Invalid maxOutputBytes: ${params.maxOutputBytes}`);
  }
}

/**
 * `execSandboxed` for a plan already made with `prepareSandbox` (the CLI prints its warnings
 * first).
 *
 * @example
 * ```ts
 * import { execPlan, prepareSandbox } from "./sandboxed.ts";
 * import assert from "node:assert/strict";
 *
 * const params = { command: ["echo", "planned"], cwd: "/" };
 * const plan = prepareSandbox(params, ["disk-full-read-access"]);
 * assert.equal((await execPlan(plan, params)).stdout, "planned\n");
 * ```
 *
 * @param plan The plan.
 * @param params The timeout, abort signal, stdin and output limit; the rest is in the plan.
 * @param started Called with the running command, before its output is read (to pass it a
 *   signal, say).
 * @returns How it ended, with its output.
 * @throws {SandboxError} When the command cannot be run in this sandbox (nothing ran).
 */
export async function execPlan(
  plan: SandboxPlan,
  params: ExecParams,
  started?: (child: SandboxedProcess) => void,
): Promise<ExecResult> {
  checkMaxOutputBytes(params);
  const max = params.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const child = spawnPlan(plan, {
    timeoutMs: params.timeoutMs,
    signal: params.signal,
    stdin: params.stdin === undefined ? "null" : "piped",
    onNetworkRefused: params.onNetworkRefused,
  });
  started?.(child);
  const feeding = child.stdin ? feed(child.stdin, params.stdin!, child.status) : Promise.resolve();
  const outputs = Promise.all([collect(child.stdout!, max), collect(child.stderr!, max)]);
  let ended: ExecStatus;
  try {
    ended = await child.status;
  } finally {
    // The pipes end with the command's process tree, or are closed by the supervisor.
    await Promise.allSettled([feeding, outputs]);
  }
  const [out, err] = await outputs;
  const decoder = new TextDecoder();
  const stdout = decoder.decode(out.bytes);
  const stderr = decoder.decode(err.bytes);
  return {
    ...ended,
    stdout,
    stderr,
    stdoutBytes: out.bytes,
    stderrBytes: err.bytes,
    truncated: out.truncated || err.truncated,
    sandboxDenied: looksSandboxDenied({ ...ended, stdout, stderr }),
    enforcement: plan.landlock.enforcement === "full" ? "full" : "partial",
    dropped: plan.landlock.dropped,
  };
}

async function feed(
  stdin: WritableStream<Uint8Array>,
  input: string | Uint8Array | ReadableStream<Uint8Array>,
  ended: Promise<unknown>,
): Promise<void> {
  if (input instanceof ReadableStream) {
    // A source that never ends (or waits for input that never comes) must not outlive the
    // command: once it has ended, the source is cancelled.
    const stop = new AbortController();
    ended.finally(() => stop.abort()).catch(() => {});
    await input.pipeTo(stdin, { signal: stop.signal }).catch(() => {});
    return;
  }
  const writer = stdin.getWriter();
  try {
    await writer.write(typeof input === "string" ? new TextEncoder().encode(input) : input);
    await writer.close();
  } catch {
    // The command exited or closed stdin without reading it all: not an error of ours.
    await writer.abort().catch(() => {});
  }
}

async function collect(
  stream: ReadableStream<Uint8Array>,
  max: number,
): Promise<{ bytes: Uint8Array; truncated: boolean }> {
  const chunks: Uint8Array[] = [];
  let kept = 0;
  let truncated = false;
  for await (const chunk of stream) {
    const room = max - kept;
    if (chunk.length > room) truncated = true;
    if (room > 0) {
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      chunks.push(part);
      kept += part.length;
    }
  }
  const bytes = new Uint8Array(kept);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return { bytes, truncated };
}
