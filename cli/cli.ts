/**
 * The CLI: parse, plan, then either become the command in place or supervise a child.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { type CliArgs, parseCliArgs, UsageError } from "./parse_args.ts";
import { SandboxPolicy } from "../policy/sandbox_policy.ts";
import type { SandboxPlan } from "../policy/plan.ts";
import { applyAndExec, EXIT_SANDBOX_FAILED } from "../exec/child.ts";
import { type SandboxedProcess, spawnPlan } from "../exec/spawn.ts";
import { createKillCgroup } from "../exec/cgroup.ts";
import { createLimitCgroups, joinLimitCgroups, sweepStaleCgroups } from "../exec/limits.ts";
import { SandboxError } from "../exec/errors.ts";
import { LAUNCHER_CWD_GONE_ENV } from "../exec/self_files.ts";
import { saveTerminal } from "../ffi/terminal.ts";
import { checkRunnable, execPlan, explainSandbox, type SandboxParams } from "../exec/sandboxed.ts";
import { probeSystem } from "../exec/probe.ts";
import { formatProbeReport } from "../policy/probe_report.ts";
import { denialHint } from "./denial_hint.ts";
import type { NetworkDecision } from "../exec/proxy.ts";
import { formatHostPort } from "../policy/network_domain.ts";
import { ConfigError, defaultConfigPath, loadConfig } from "./config.ts";

/** Exit code for a wrong invocation; nothing runs. */
export const EXIT_USAGE = 2;

/** `--help`. */
export const HELP =
  `llmx-sandbox ${denoJson.version}: run a command that can read the machine (secrets aside) but
write only where allowed, and reach only the network given (Linux: Landlock + seccomp).

Usage: llmx-sandbox [OPTIONS] [--] COMMAND [ARGS...]
Options end at "--" or at the first argument that is not an option.

Options:
  -s, --sandbox-permission PERM  Grant a permission (repeatable). None: read-only, no network.
      --full-auto                Write in the cwd, $TMPDIR and /tmp; no network.
      --restrict-reads           Read only what the command needs, not the whole machine.
      --hide PATH                Hide PATH too (repeatable).
      --show PATH                Make a hidden credential location readable (repeatable).
      --deny-domain PATTERN      Refuse PATTERN even where network-domain allows it.
      --timeout DURATION         Supervise the command and kill it after DURATION (exit 124):
                                 60000 is milliseconds; 30s, 2m, 1m30s, 500ms. Without it the
                                 sandbox becomes the command in place (terminal, job control and
                                 exit status as if run directly).
      --cwd DIR                  Run the command in DIR (default: the current folder).
      --env KEY[=VALUE]          Pass KEY from this environment, or set it (repeatable).
      --inherit-env              Pass variables that look like credentials too (*KEY*,
                                 *SECRET*, *TOKEN*, *PASSWORD*, *CREDENTIAL*, *AUTH*).
      --clear-env                Pass only PATH, HOME, TERM, LANG, USER and TMPDIR.
      --config FILE              Read options from FILE (default, when it exists:
                                 $XDG_CONFIG_HOME/llmx-sandbox/config.json, else
                                 ~/.config/llmx-sandbox/config.json).
      --run-as USER[:GROUP]      As root: run the command with that user's uid, gid and
                                 groups (names or numbers), so that it owns nothing of root's.
      --max-memory SIZE          Limit the run's memory (512M, 2G); see the README for how.
      --max-processes N          Limit its processes and threads (default 4096; 0: no cap).
      --max-cpu DURATION         Limit each process's CPU time (90s, 1m30s).
      --max-file-size SIZE       Limit the size of any file it writes.
      --max-open-files N         Limit the descriptors each process may have open.
                                 A limit asked for supervises the command; --probe tells how
                                 each is enforced here.
      --json                     Supervise, capture the output and print one JSON object
                                 (exitCode, signal, stdout, stderr, timedOut, truncated,
                                 durationMs, sandboxDenied, network) on stdout.
      --stdin                    With --json: give this process's stdin to the command.
      --explain                  Print the plan as JSON (environment values hidden) and run
                                 nothing (exit 0 if it would run, 125 if not).
      --require-full             Refuse (125) unless fully enforced on this kernel.
      --probe                    Report what this system can enforce (with --json: as JSON);
                                 exit 0 fully, 1 partially, 125 not at all.
  -q, --quiet                    No warnings, notes or hints.
  -h, --help                     Show this help.
  -V, --version                  Show the version.

Permissions (reading the machine, secrets aside, is always granted unless --restrict-reads):
  disk-read-folder=PATH                   with --restrict-reads: read beneath PATH
  disk-write-cwd                          write beneath the working folder
  disk-write-platform-user-temp-folder    write beneath $TMPDIR
  disk-write-platform-global-temp-folder  write beneath /tmp
  disk-write-folder=PATH                  write beneath PATH
  disk-full-write-access                  write anywhere (as root: with the network or --run-as)
  network-full-access                     the network (not the machine's UNIX sockets)
  network-domain=PATTERN                  reach these hosts only, through a proxy: a name,
                                          *.example.com or an IP, [:PORT] (default 80, 443)
  network-connect-tcp=PORT                connect to TCP PORT on any host (no DNS)
  network-bind-tcp=PORT                   listen on TCP PORT
  network-unix-sockets                    connect to UNIX sockets (agents, docker, D-Bus)

Hidden from reading: ~/.ssh, ~/.aws and the other credential locations of $HOME and /root,
/etc/shadow, SSH host keys, other terminals (/dev), and as root other users' homes.

Exit codes: the command's own; 128+N when signal N killed it; 124 timeout; 125 the sandbox
cannot be applied (nothing ran); 126 not executable; 127 not found; 2 wrong invocation or a
refused policy (nothing ran). With --probe: 0 fully enforced, 1 partially, 125 not at all.

Examples:
  llmx-sandbox -- sh -c 'echo hi > proof.txt'   # denied: read-only by default
  llmx-sandbox -s disk-write-cwd -- sh -c 'echo hi > proof.txt'   # allowed: writes in . only
  llmx-sandbox --full-auto -- make              # writes in ., $TMPDIR and /tmp
  llmx-sandbox --full-auto --timeout 2m -- npm test
  llmx-sandbox -s network-domain=registry.npmjs.org -s disk-write-folder=~/.npm --full-auto -- npm install
  llmx-sandbox --max-memory 2G --max-cpu 10m --full-auto -- make -j8
  llmx-sandbox --explain -s disk-write-cwd -- make  # the plan, without running
  llmx-sandbox --probe                          # what this kernel can enforce
`;

const FORWARDED: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** Printed (unless --quiet) when reads are restricted, so that a failed read is not a mystery. */
export const RESTRICTED_READS_NOTICE =
  "note: reads are restricted (--restrict-reads): only system folders, the working folder, " +
  "the writable roots, each disk-read-folder and the program are readable";

function fail(message: string): void {
  writeAllTo(Deno.stderr, new TextEncoder().encode(`llmx-sandbox: ${message}\n`));
}

/** Writes all of `bytes` to stderr without blocking the event loop; `false` once it cannot. */
async function forward(bytes: Uint8Array): Promise<boolean> {
  try {
    for (let done = 0; done < bytes.length;) done += await Deno.stderr.write(bytes.subarray(done));
    return true;
  } catch {
    return false;
  }
}

/** One line on stderr, as it is (a message that carries its own prefix). */
function writeLine(line: string): void {
  writeAllTo(Deno.stderr, new TextEncoder().encode(`${line}\n`));
}

/** Writes all of `bytes`; `false` when the stream cannot take them (its reader is gone). */
function writeAllTo(stream: { writeSync(bytes: Uint8Array): number }, bytes: Uint8Array): boolean {
  try {
    for (let done = 0; done < bytes.length;) done += stream.writeSync(bytes.subarray(done));
    return true;
  } catch {
    return false;
  }
}

/** The exit code for a `SandboxError`: 2 for what the user asked wrongly, 125 for the system. */
function exitCodeFor(error: SandboxError): number {
  return error.kind === "invalid-policy" || error.kind === "missing-path" ||
      error.kind === "invalid-command"
    ? EXIT_USAGE
    : EXIT_SANDBOX_FAILED;
}

/**
 * Runs the CLI.
 * @param argv The arguments after the program name.
 * @returns The exit code (when it did not become the command).
 */
export async function cliMain(argv: readonly string[]): Promise<number> {
  let args: CliArgs;
  try {
    args = parseCliArgs(argv);
    if (!args.help && !args.version && !args.probe && args.command.length === 0) {
      throw new UsageError("No command given (see --help)");
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    fail(error.message);
    return EXIT_USAGE;
  }
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  if (args.version) {
    console.log(`llmx-sandbox ${denoJson.version}`);
    return 0;
  }
  if (args.probe) {
    const report = probeSystem();
    console.log(args.json ? JSON.stringify(report, null, 2) : formatProbeReport(report).trimEnd());
    return { full: 0, partial: 1, none: EXIT_SANDBOX_FAILED }[report.verdict];
  }
  if (Deno.env.get(LAUNCHER_CWD_GONE_ENV) === "1" && !/^[/~]/.test(args.cwd ?? "")) {
    fail(
      "The current folder was deleted: cd to a folder that exists, or pass --cwd with an " +
        "absolute path",
    );
    return EXIT_USAGE;
  }
  let policy: SandboxPolicy;
  let restrictedReads = false;
  let params: SandboxParams;
  try {
    const caller = Deno.env.toObject();
    const loaded = loadConfig(args.config, caller);
    const file = loaded?.config ?? {};
    // A permission list on the command line (or --full-auto) replaces the file's. Full read is
    // always part of it unless restricted reads are asked for by name: granting writes or the
    // network must never take reading away.
    const restrictReads = args.restrictReads || (file.restrictReads ?? false);
    const given = args.fullAuto || args.permissions.length > 0
      ? [...(args.fullAuto ? SandboxPolicy.fullAuto().permissions : []), ...args.permissions]
      : file.permissions ?? [];
    const permissions = restrictReads
      ? given.filter((permission) => permission.kind !== "disk-full-read-access")
      : [{ kind: "disk-full-read-access" } as const, ...given];
    policy = new SandboxPolicy(permissions, {
      hide: [...(file.hide ?? []), ...args.hide],
      show: [...(file.show ?? []), ...args.show],
      denyDomains: [...(file.denyDomains ?? []), ...args.denyDomains],
    });
    restrictedReads = restrictReads;
    params = {
      command: args.command,
      cwd: args.cwd,
      clearEnv: args.clearEnv || (file.clearEnv ?? false),
      inheritEnv: args.inheritEnv || (file.inheritEnv ?? false),
      envEntries: [...(file.env ?? []), ...args.env],
      timeoutMs: args.timeoutMs ?? file.timeoutMs,
      requireFull: args.requireFull || (file.requireFull ?? false),
      runAs: args.runAs,
      limits: { ...file.limits, ...args.limits },
      // A later run reads its config before anything else: the command must not be able to
      // write it, create it, or swap a folder on the way to it (the default one included,
      // whether or not it exists yet).
      protect: [
        ...(loaded ? [loaded.given] : []),
        ...[defaultConfigPath(caller)].flatMap((path) =>
          path && path.startsWith("/") ? [path] : []
        ),
      ].map((path) => ({
        path,
        what: "the config file",
        fix: "move it (or pass --config with a file outside the writable roots)",
      })),
    };
    // The terminal the command is handed: in place the caller's, controlling terminal and all;
    // supervised only the streams passed through (its stderr passes through us unless --quiet);
    // with --json none.
    if (!args.json) {
      params.terminal = !supervised(params, policy)
        ? { devices: terminalsOf([0, 1, 2]), controlling: true }
        : { devices: terminalsOf(args.quiet ? [0, 1, 2] : [0, 1]), controlling: false };
    }
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    fail(error.message);
    return EXIT_USAGE;
  }
  try {
    const plan = explainSandbox(params, policy);
    if (args.explain) {
      // The plan as the child receives it, but for the environment's values: an explanation
      // gets pasted into logs and issues, and the environment holds tokens.
      const env = plan.env.map((entry) => `${entry.slice(0, entry.indexOf("="))}=<hidden>`);
      console.log(JSON.stringify({ ...plan, env }, null, 2));
      checkRunnable(plan, params.requireFull ?? false);
      return 0;
    }
    checkRunnable(plan, params.requireFull ?? false);
    const warnings = { quiet: args.quiet, restrictedReads };
    if (args.json) return await runJson(plan, params, args.stdin, warnings);
    warn(plan, warnings);
    return !supervised(params, policy)
      ? runInPlace(plan)
      : await runSupervised(plan, params.timeoutMs, args.quiet);
  } catch (error) {
    if (error instanceof ConfigError) {
      fail(error.message);
      return EXIT_USAGE;
    }
    if (!(error instanceof SandboxError)) throw error;
    if (args.json) {
      console.log(JSON.stringify({ error: { kind: error.kind, message: error.message } }));
    }
    fail(error.message);
    return exitCodeFor(error);
  }
}

/** What the warnings depend on besides the plan. */
interface WarningContext {
  /** `--quiet`: none at all. */
  quiet: boolean;
  /** `--restrict-reads` (or the config's `restrictReads`): say so once. */
  restrictedReads: boolean;
}

/** Says on stderr, a line each, what the plan could not enforce and what its user should know. */
function warn(plan: SandboxPlan, context: WarningContext): void {
  if (context.quiet) return;
  if (plan.landlock.enforcement === "partial") {
    fail(`warning: partially enforced: ${plan.landlock.dropped.join("; ")}`);
  }
  for (const warning of plan.warnings) fail(`warning: ${warning}`);
  if (context.restrictedReads) fail(RESTRICTED_READS_NOTICE);
}

/** One line for a host the proxy refused: which, why, and the permission that would allow it. */
function tellRefused(decision: NetworkDecision): void {
  const target = formatHostPort(decision.host, decision.port);
  fail(
    `network: refused ${target} (${decision.reason})` +
      (decision.suggestion ? `; to allow it, add -s ${decision.suggestion}` : ""),
  );
}

/** The terminal devices behind some of this process's standard streams. */
function terminalsOf(fds: readonly number[]): string[] {
  const streams = [Deno.stdin, Deno.stdout, Deno.stderr];
  return [
    ...new Set(fds.flatMap((fd) => {
      try {
        return streams[fd].isTerminal() ? [Deno.realPathSync(`/proc/self/fd/${fd}`)] : [];
      } catch {
        return [];
      }
    })),
  ];
}

/**
 * Whether the command runs under a supervisor rather than in place: with a timeout; when its
 * listen() calls are answered by the supervisor or its network is the supervisor's proxy; and
 * with a limit asked for, so that the run's cgroups are read (which limit ended it) and removed
 * after it. The default process cap alone does not need one.
 */
function supervised(params: SandboxParams, policy: SandboxPolicy): boolean {
  // --max-processes 0 lifts the default cap: no limit to read back.
  const { processes, ...others } = params.limits ?? {};
  return params.timeoutMs !== undefined || policy.needsSupervisor() || (processes ?? 0) > 0 ||
    Object.values(others).some((value) => value !== undefined);
}

/** Becomes the command: returns only when that failed. */
function runInPlace(plan: SandboxPlan): number {
  // The limits' cgroups, joined by this very process, which becomes the command; nobody is
  // left to remove them: a later run does (sweepStaleCgroups), once this pid is gone.
  sweepStaleCgroups();
  if (plan.limits.cgroups.length > 0) {
    try {
      const onV2 = plan.limits.cgroups.includes("v2");
      const v2 = onV2 ? createKillCgroup(true) : undefined;
      if (onV2 && v2 === undefined) throw new Error("no cgroup v2 folder could be made here");
      const cgroups = createLimitCgroups(plan.limits, {
        killCgroupProcs: v2?.procsPath,
        inPlace: true,
      });
      joinLimitCgroups([...(v2 ? [v2.procsPath] : []), ...cgroups.procsPaths]);
    } catch (error) {
      fail(`${error instanceof Error ? error.message : error}; nothing was run`);
      return EXIT_SANDBOX_FAILED;
    }
  }
  return applyAndExec(plan, {
    newSession: false,
    reporter: {
      execing() {},
      failed: (message) => fail(`Cannot apply the sandbox: ${message}; nothing was run`),
    },
  });
}

/** How much of the command's stderr is kept to look for a permission error. */
const HINT_TAIL_BYTES = 64 * 1024;

async function runSupervised(
  plan: SandboxPlan,
  timeoutMs: number | undefined,
  quiet: boolean,
): Promise<number> {
  // Its streams are ours: a terminal it leaves without echo, or raw, is put back as it was.
  // Any of them: a command whose stdin is not the terminal can reach it through stdout or stderr.
  const restores = [0, 1, 2].flatMap((fd) => saveTerminal(fd) ?? []);
  const restoreTerminal = () => restores.forEach((restore) => restore());
  // stderr passes through us, so that a hint can follow the command's own last words.
  const child = spawnPlan(plan, {
    timeoutMs,
    stdin: "inherit",
    stdout: "inherit",
    stderr: quiet ? "inherit" : "piped",
    onNetworkRefused: quiet ? undefined : tellRefused,
  });
  const stopForwarding = forwardSignals(child);
  let tail = new Uint8Array(0);
  const copying = (async () => {
    if (!child.stderr) return;
    for await (const chunk of child.stderr) {
      // Our stderr's reader went away: stop reading, so that the command's next write fails
      // as it would have without us (SIGPIPE), and keep the command's own status.
      if (!await forward(chunk)) break;
      const joined = new Uint8Array(tail.length + chunk.length);
      joined.set(tail);
      joined.set(chunk, tail.length);
      tail = joined.slice(-HINT_TAIL_BYTES);
    }
  })();
  try {
    const status = await child.status;
    await copying;
    if (status.timedOut) fail(`timed out after ${timeoutMs} ms; killed`);
    if (status.limitMessage && !quiet) writeLine(status.limitMessage);
    if (!quiet && status.exitCode !== 0 && !status.timedOut) {
      const hint = denialHint(new TextDecoder().decode(tail), plan);
      if (hint) fail(hint);
    }
    return status.exitCode;
  } finally {
    await copying.catch(() => {});
    stopForwarding();
    restoreTerminal();
  }
}

/**
 * Passes SIGINT, SIGTERM and SIGHUP sent to us on to the command, as if it had been sent to it.
 * @returns The function that stops it.
 */
function forwardSignals(child: SandboxedProcess): () => void {
  const forwarders = FORWARDED.map((signal) => {
    const handler = () => child.kill(signal);
    Deno.addSignalListener(signal, handler);
    return { signal, handler };
  });
  return () => {
    for (const { signal, handler } of forwarders) Deno.removeSignalListener(signal, handler);
  };
}

async function runJson(
  plan: SandboxPlan,
  params: SandboxParams,
  stdin: boolean,
  warnings: WarningContext,
): Promise<number> {
  warn(plan, warnings);
  let stopForwarding = () => {};
  let result;
  try {
    result = await execPlan(plan, {
      ...params,
      onNetworkRefused: warnings.quiet ? undefined : tellRefused,
      // Read as the command reads it: an endless stdin must not keep the timeout from ending
      // the run, nor fill our memory.
      stdin: stdin ? Deno.stdin.readable : undefined,
    }, (child) => stopForwarding = forwardSignals(child));
  } finally {
    stopForwarding();
  }
  if (result.limitMessage && !warnings.quiet) writeLine(result.limitMessage);
  const { stdoutBytes: _stdout, stderrBytes: _stderr, limitMessage: _message, ...printable } =
    result;
  console.log(JSON.stringify(printable));
  return result.exitCode;
}
