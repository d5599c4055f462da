/**
 * The supervising parent: starts its own executable again as the sandboxed child, enforces the
 * timeout and the abort signal on the whole process tree, and tells "the sandbox could not be
 * applied" from the command's own exit status. The parent itself is never restricted.
 *
 * @module
 */

import type { SandboxPlan } from "../policy/plan.ts";
import { createKillCgroup, type KillCgroup } from "./cgroup.ts";
import { SandboxError } from "./errors.ts";
import { signalNumber } from "./signals.ts";
import { CHANNEL, CHILD_FLAG } from "./supervised_child.ts";
import { join } from "../policy/_path.ts";
import { ChildChannel } from "./channel.ts";
import { type ListenSupervisor, superviseListen } from "./listen_supervisor.ts";
import { takeDescriptor } from "../ffi/notify.ts";
import { type DomainProxy, type NetworkDecision, startProxy } from "./proxy.ts";
import { parseDomainPattern } from "../policy/network_domain.ts";
import {
  createLimitCgroups,
  type LimitCgroups,
  LimitSetupError,
  sweepStaleCgroups,
} from "./limits.ts";
import { type LimitName, limitOutcome } from "../policy/limits.ts";
import { LANDLOCK_ACCESS_NET_CONNECT_TCP, type LandlockNetRule } from "../policy/landlock.ts";
import { sha256Hex } from "./_sha256.ts";
// Imported for its side effect on the module graph: whoever imports this module (from a URL
// too) has the child's entry cached, and the child starts with `--cached-only`.
import "./child_main.ts";

/** Where a standard stream of the command goes. */
export type StdioMode = "null" | "inherit" | "piped";

/** How to supervise a command. */
export interface SpawnOptions {
  /** Kill the command and everything it started after this many milliseconds. @default undefined (never) */
  timeoutMs?: number;
  /** Aborting kills the command and everything it started. @default undefined */
  signal?: AbortSignal;
  /** The command's stdin. @default "null" */
  stdin?: StdioMode;
  /** The command's stdout. @default "piped" */
  stdout?: StdioMode;
  /** The command's stderr. @default "piped" */
  stderr?: StdioMode;
  /**
   * With `network-domain`: called once per host and port the proxy refused (the CLI prints a
   * line naming the permission that would allow it). @default undefined
   */
  onNetworkRefused?: (decision: NetworkDecision) => void;
}

/** How a supervised command ended. */
export interface ExecStatus {
  /**
   * The exit code a shell would report: the command's own, 128+N when signal N killed it,
   * 124 when the timeout did.
   */
  exitCode: number;
  /** The signal that killed it, if one did (SIGKILL after a timeout or an abort). */
  signal: Deno.Signal | null;
  /** Whether the timeout killed it. */
  timedOut: boolean;
  /** Whether the abort signal killed it. */
  aborted: boolean;
  /** Wall time from spawning the child to the command's end, in milliseconds. */
  durationMs: number;
  /**
   * With `network-domain`: every connection the command asked the built-in proxy for, allowed
   * or refused, with the reason and the bytes relayed; empty otherwise.
   */
  network: NetworkDecision[];
  /**
   * Refusals left out of `network` once it held 10000 entries (allowed connections are kept
   * past that): 0 unless the command made that many.
   */
  networkDropped: number;
  /** The resource limit the command ran into, as far as the kernel says, or `null`. */
  limitExceeded: LimitName | null;
  /** With `limitExceeded`: one line naming the limit and what happened, else `null`. */
  limitMessage: string | null;
}

/** A running sandboxed command. */
export interface SandboxedProcess {
  /** The child's pid, which is the command's after `execve`, and its process group's id. */
  readonly pid: number;
  /** The command's stdin when `stdin: "piped"`, else `null`. */
  readonly stdin: WritableStream<Uint8Array> | null;
  /** The command's stdout when piped, else `null`. */
  readonly stdout: ReadableStream<Uint8Array> | null;
  /** The command's stderr when piped, else `null`. */
  readonly stderr: ReadableStream<Uint8Array> | null;
  /**
   * Resolves when the command has ended and everything it started is gone; rejects with a
   * `SandboxError` when the sandbox could not be applied (then the command never ran).
   */
  readonly status: Promise<ExecStatus>;
  /**
   * Sends a signal to the command's process group (SIGKILL reaches every descendant, also
   * those that left the group, where a cgroup is available).
   * @param signal @default "SIGTERM"
   */
  kill(signal?: Deno.Signal): void;
}

/** Exit code when the timeout killed the command, as `timeout(1)` reports it. */
export const EXIT_TIMEOUT = 124;

/** The longest timeout (about 24.8 days): `setTimeout` fires at once beyond a signed 32-bit value. */
export const MAX_TIMEOUT_MS = 2_147_483_647;

/** How long piped output may stay open after the command ended, when no cgroup could kill all. */
const DRAIN_MS = 2000;

/**
 * How `deno run` starts the child: the caller's deno.json, lock file and network must not shape
 * or delay it.
 */
export const CHILD_RUN_FLAGS: readonly string[] = [
  "run",
  "--allow-all",
  "--no-config",
  "--no-lock",
  "--cached-only",
  "--quiet",
];

/**
 * The program and arguments that start this executable as the supervised child.
 * @param planFd The plan's descriptor in this process.
 * @param planDigest The plan's SHA-256, which the child checks.
 * @param channelFd The channel's write end in this process.
 * @param answerFd The answer pipe's read end in this process, or -1.
 * @returns For `Deno.Command`.
 */
export function childInvocation(
  planFd: number,
  planDigest: string,
  channelFd: number,
  answerFd = -1,
): { program: string; args: string[] } {
  const program = Deno.execPath();
  const childArgs = [
    String(Deno.pid),
    String(planFd),
    planDigest,
    String(channelFd),
    String(answerFd),
  ];
  if (Deno.build.standalone) return { program, args: [CHILD_FLAG, ...childArgs] };
  return {
    program,
    args: [...CHILD_RUN_FLAGS, new URL("./child_main.ts", import.meta.url).href, ...childArgs],
  };
}

/**
 * The environment the Deno child starts with: fixed variables, and where this process's own
 * modules are cached, as absolute paths (the child starts in `/`, so a relative `HOME` would
 * mean another folder there). The command's environment is not in it: it travels in the sealed
 * plan, so that an `LD_PRELOAD` or `DENO_*` meant for the command never acts on the still
 * unrestricted child, and a variable as long as `execve` allows reaches the command whole.
 * @returns The child's environment.
 */
export function childEnvironment(): Record<string, string> {
  const env: Record<string, string> = {
    PATH: "/usr/local/bin:/usr/bin:/bin",
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
  };
  let cwd: string | undefined;
  try {
    cwd = Deno.cwd();
  } catch {
    // Deleted: a relative location cannot be resolved, so it is not passed on.
  }
  for (const key of ["HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(key);
    if (!value) continue;
    const absolute = value.startsWith("/") ? value : cwd && join(cwd, value);
    // Deno cannot start where HOME is a file (it reads $HOME/.npmrc); without it, it takes the
    // home folder of the passwd entry.
    if (absolute && (key !== "HOME" || isFolder(absolute))) env[key] = absolute;
  }
  return env;
}

function isFolder(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** This machine's addresses, every interface's (IPv6 zones left out). */
function ownAddresses(): string[] {
  try {
    return Deno.networkInterfaces().map((info) => info.address.replace(/%.*$/, ""));
  } catch {
    return [];
  }
}

/** What kills each command still running, when this process exits. */
const RUNNING = new Set<() => void>();
globalThis.addEventListener("unload", () => {
  for (const kill of RUNNING) kill();
});

/**
 * Runs a plan in a supervised child.
 *
 * @example Run a plan with its output inherited
 * ```ts
 * import { prepareSandbox } from "./sandboxed.ts";
 * import { spawnPlan } from "./spawn.ts";
 * import assert from "node:assert/strict";
 *
 * const plan = prepareSandbox({ command: ["true"], cwd: "/" }, ["disk-full-read-access"]);
 * const child = spawnPlan(plan, { stdout: "inherit", stderr: "inherit", timeoutMs: 10_000 });
 * assert.equal((await child.status).exitCode, 0);
 * ```
 *
 * @param plan The plan; must be runnable.
 * @param options Streams, timeout and abort signal.
 * @returns The running command.
 * @throws {SandboxError} When the plan is not runnable.
 */
export function spawnPlan(plan: SandboxPlan, options: SpawnOptions = {}): SandboxedProcess {
  if (!plan.runnable) {
    throw new SandboxError(
      "landlock-unavailable",
      `Cannot apply the sandbox: ${plan.landlock.dropped.join("; ")}; nothing was run`,
    );
  }
  options.signal?.throwIfAborted();
  let cgroup: KillCgroup | undefined;
  let channel: ChildChannel | undefined;
  let child: Deno.ChildProcess;
  let listen: ListenSupervisor | undefined;
  let proxy: DomainProxy | undefined;
  let limits: LimitCgroups | undefined;
  const started = performance.now();
  try {
    sweepStaleCgroups();
    cgroup = createKillCgroup();
    try {
      limits = createLimitCgroups(plan.limits, { killCgroupProcs: cgroup?.procsPath });
    } catch (error) {
      if (!(error instanceof LimitSetupError)) throw error;
      throw new SandboxError("limit-unavailable", `${error.message}; nothing was run`);
    }
    let supervised: SandboxPlan = {
      ...plan,
      supervision: {
        parentPid: Deno.pid,
        cgroupProcs: cgroup?.procsPath,
        limitProcs: limits.procsPaths,
      },
    };
    if (plan.proxy) {
      // The proxy listens before the child starts: its port goes into the Landlock rules (the
      // only port the command may connect to) and into the command's proxy variables.
      proxy = startProxy({
        rules: {
          allow: plan.proxy.allow.map(parseDomainPattern),
          deny: plan.proxy.deny.map(parseDomainPattern),
          ownAddresses: ownAddresses(),
        },
        clientUid: plan.runAs?.uid ?? Deno.uid() ?? undefined,
        onRefused: options.onNetworkRefused,
      });
      supervised = {
        ...supervised,
        proxy: { ...plan.proxy, port: proxy.port },
        landlock: {
          ...plan.landlock,
          netRules: withConnectRule(plan.landlock.netRules, proxy.port),
        },
      };
      supervised = { ...supervised, env: withProxyEnvironment(plan.env, proxy.port) };
    }
    const planBytes = new TextEncoder().encode(JSON.stringify(supervised));
    const answers = plan.listen !== null;
    channel = new ChildChannel(planBytes, (line) => {
      if (!line.startsWith(`${CHANNEL.listener}\t`)) return;
      // The child's filter hands listen() to us: take its listener, then let it go on.
      try {
        const fd = takeDescriptor(child.pid, Number(line.slice(CHANNEL.listener.length + 1)));
        listen = superviseListen(fd, plan.listen!);
        channel!.answer("ok");
      } catch (error) {
        channel!.answer(error instanceof Error ? error.message : String(error));
      }
    }, answers);
    // The plan file is sealed and only reachable through this process; the digest on the
    // child's command line makes sure it reads that very plan.
    const { program, args } = childInvocation(
      channel.planFd,
      sha256Hex(planBytes),
      channel.writeFd,
      channel.answerFd,
    );
    child = new Deno.Command(program, {
      args,
      cwd: "/",
      clearEnv: true,
      env: childEnvironment(),
      stdin: options.stdin ?? "null",
      stdout: options.stdout ?? "piped",
      stderr: options.stderr ?? "piped",
    }).spawn();
  } catch (error) {
    channel?.releaseChildEnds();
    cgroup?.remove();
    limits?.remove();
    proxy?.close();
    throw error;
  }
  const report = channel;
  // Moved while it starts, off its critical path; it checks and joins itself if this is late.
  // Not where limits are on that cgroup: Deno's own start-up would count against them.
  const moving = cgroup && !plan.limits.cgroups.includes("v2")
    ? Deno.writeTextFile(cgroup.procsPath, String(child.pid)).catch(() => {})
    : Promise.resolve();

  let reaped = false;
  const signalGroup = (signal: Deno.Signal) => {
    // The child makes its own process group; until it has, only its pid exists. Once it is
    // reaped its pid may belong to someone else: then only the group, which outlives it.
    for (const target of reaped ? [-child.pid] : [-child.pid, child.pid]) {
      try {
        Deno.kill(target, signal);
        return;
      } catch {
        // Try the next target; the child may already be gone.
      }
    }
  };
  const killTree = () => {
    cgroup?.kill();
    signalGroup("SIGKILL");
  };
  // If this process exits while the command runs (Deno.exit, the end of its program), nobody
  // would be left to end it: it goes first.
  const onExit = () => {
    killTree();
    limits?.kill();
  };
  RUNNING.add(onExit);

  let timedOut = false;
  let aborted = false;
  let killed = false;
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    killTree();
  }, options.timeoutMs);
  const onAbort = () => {
    aborted = true;
    killTree();
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });

  const stdout = options.stdout === "piped" || options.stdout === undefined
    ? guard(child.stdout)
    : undefined;
  const stderr = options.stderr === "piped" || options.stderr === undefined
    ? guard(child.stderr)
    : undefined;

  const status = (async (): Promise<ExecStatus> => {
    try {
      const ended = await child.status;
      reaped = true;
      await moving;
      const durationMs = performance.now() - started;
      // Nothing the command started outlives it: background leftovers die with it.
      const counters = { ...limits?.readOutcome(), cpuUsageMs: cgroup?.cpuUsageMs() };
      killTree();
      limits?.kill();
      await cgroup?.remove();
      await limits?.remove();
      await listen?.stop();
      await proxy?.close();
      // A descendant that got out of the kill's reach (no cgroup, or one that could write
      // cgroup.procs with full write access) may hold the pipes open: drain, then close.
      if (stdout || stderr) await drainWithDeadline([stdout, stderr], DRAIN_MS);
      const lines = await report.lines();
      const error = lines.find((line) => line.startsWith(`${CHANNEL.error}\t`));
      if (error) {
        throw new SandboxError(
          "apply-failed",
          `Cannot apply the sandbox: ${error.slice(CHANNEL.error.length + 1)}; nothing was run`,
        );
      }
      if (!lines.includes(CHANNEL.exec) && !timedOut && !aborted && !killed) {
        const how = ended.signal ? `signal ${ended.signal}` : `exit code ${ended.code}`;
        const memory = plan.limits.limits.find((limit) => limit.name === "memory");
        const why = memory && (counters.oomKills ?? 0) > 0
          ? `: the memory limit (${memory.option} ${memory.shown}) is too small for it to ` +
            "start the command, raise it"
          : "";
        throw new SandboxError(
          "child-failed",
          `The sandbox child ended (${how}) before it could run the command${why}; nothing ` +
            "was run",
        );
      }
      const network = proxy?.decisions() ?? [];
      const networkDropped = proxy?.droppedDecisions ?? 0;
      const exitCode = timedOut
        ? EXIT_TIMEOUT
        : ended.signal
        ? 128 + (signalNumber(ended.signal) ?? 0)
        : ended.code;
      const outcome = timedOut
        ? { limitExceeded: null, message: null }
        : limitOutcome(plan.limits, { code: exitCode, signal: ended.signal }, counters);
      return {
        signal: ended.signal,
        timedOut,
        aborted,
        durationMs,
        network,
        networkDropped,
        exitCode,
        limitExceeded: outcome.limitExceeded,
        limitMessage: outcome.message,
      };
    } finally {
      RUNNING.delete(onExit);
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      report.releaseChildEnds();
    }
  })();

  return {
    pid: child.pid,
    stdin: options.stdin === "piped" ? child.stdin : null,
    stdout: stdout?.stream ?? null,
    stderr: stderr?.stream ?? null,
    status,
    kill(signal: Deno.Signal = "SIGTERM") {
      killed = true;
      if (signal === "SIGKILL") killTree();
      else signalGroup(signal);
    },
  };
}

/** The variables that send HTTP clients to the proxy (lower case too: curl reads only those). */
export const PROXY_VARIABLES: readonly string[] = [
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "ALL_PROXY",
  "http_proxy",
  "https_proxy",
  "all_proxy",
];

/** The command's environment with the proxy's variables, and nothing that would bypass it. */
function withProxyEnvironment(env: readonly string[], port: number): string[] {
  const names = new Set([...PROXY_VARIABLES, "NO_PROXY", "no_proxy"]);
  const kept = env.filter((entry) => !names.has(entry.slice(0, entry.indexOf("="))));
  const url = `http://127.0.0.1:${port}`;
  return [
    ...kept,
    ...PROXY_VARIABLES.map((name) => `${name}=${url}`),
    "NO_PROXY=",
    "no_proxy=",
  ].sort();
}

/** The net rules with connect allowed to `port` too. */
function withConnectRule(rules: readonly LandlockNetRule[], port: number): LandlockNetRule[] {
  const others = rules.filter((rule) => rule.port !== port);
  const existing = rules.find((rule) => rule.port === port);
  const access = (existing?.access ?? 0) | LANDLOCK_ACCESS_NET_CONNECT_TCP;
  const rights = [...new Set([...(existing?.rights ?? []), "connect_tcp"])].sort();
  return [...others, { port, access, rights }].sort((a, b) => a.port - b.port);
}

interface Guarded {
  stream: ReadableStream<Uint8Array>;
  done: Promise<void>;
  terminate(): void;
}

/** Wraps a pipe so that the supervisor can end it even while a stray process holds it open. */
function guard(source: ReadableStream<Uint8Array>): Guarded {
  const reader = source.getReader();
  let finished = false;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => finish = resolve);
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const end = () => {
    finished = true;
    finish();
  };
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    async pull(c) {
      try {
        const { value, done } = await reader.read();
        if (finished) return;
        if (done) {
          end();
          c.close();
        } else {
          c.enqueue(value);
        }
      } catch (error) {
        if (finished) return;
        end();
        c.error(error);
      }
    },
    cancel(reason) {
      end();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return {
    stream,
    done,
    terminate() {
      if (finished) return;
      end();
      reader.cancel().catch(() => {});
      try {
        controller.close();
      } catch {
        // Already closed or errored.
      }
    },
  };
}

async function drainWithDeadline(pipes: (Guarded | undefined)[], ms: number): Promise<void> {
  const open = pipes.filter((pipe): pipe is Guarded => pipe !== undefined);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  await Promise.race([Promise.all(open.map((pipe) => pipe.done)), deadline]);
  clearTimeout(timer);
  for (const pipe of open) pipe.terminate();
}
