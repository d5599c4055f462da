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
import { spawnPlan } from "../exec/spawn.ts";
import { SandboxError } from "../exec/errors.ts";
import { execPlan, prepareSandbox, type SandboxParams } from "../exec/sandboxed.ts";

/** Exit code for a wrong invocation; nothing runs. */
export const EXIT_USAGE = 2;

/** `--help`. */
export const HELP =
  `llmx-sandbox ${denoJson.version}: run a command that can read the machine but write
only where allowed, and reach no network (Linux: Landlock + seccomp).

Usage: llmx-sandbox [OPTIONS] [--] COMMAND [ARGS...]
Options end at "--" or at the first argument that is not an option.

Options:
  -s, --sandbox-permission PERM  Grant a permission (repeatable). None given: read-only.
      --full-auto                Full read, write in the cwd, $TMPDIR and /tmp, no network.
      --timeout MS               Supervise the command and kill it after MS milliseconds
                                 (exit 124). Without it the sandbox becomes the command in
                                 place (terminal, job control and exit status as if run directly).
      --cwd DIR                  Run the command in DIR (default: the current folder).
      --run-as USER[:GROUP]      As root: run the command with that user's uid, gid and
                                 groups (names or numbers), so that it owns nothing of root's.
      --json                     Supervise, capture the output and print one JSON object
                                 (exitCode, signal, stdout, stderr, timedOut, truncated,
                                 durationMs, sandboxDenied) on stdout.
      --stdin                    With --json: give this process's stdin to the command
                                 (otherwise it reads nothing).
  -h, --help                     Show this help.
  -V, --version                  Show the version.

Permissions:
  disk-full-read-access                   read everything (reads are not yet restricted anyway)
  disk-write-cwd                          write beneath the working folder
  disk-write-platform-user-temp-folder    write beneath $TMPDIR
  disk-write-platform-global-temp-folder  write beneath /tmp
  disk-write-folder=PATH                  write beneath PATH
  disk-full-write-access                  write anywhere
  network-full-access                     use the network

Exit codes: the command's own; 128+N when signal N killed it; 124 timeout; 125 the sandbox
cannot be applied (nothing ran); 126 not executable; 127 not found; 2 wrong invocation.

Examples:
  llmx-sandbox -- sh -c 'echo hi > x'             # denied: read-only by default
  llmx-sandbox -s disk-write-cwd -- make          # build, writing only in the cwd
  llmx-sandbox --full-auto --timeout 60000 -- npm test
  llmx-sandbox -s network-full-access -- curl -sI https://example.com
`;

const FORWARDED: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

function fail(message: string): void {
  console.error(`llmx-sandbox: ${message}`);
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
    if (!args.help && !args.version && args.command.length === 0) {
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
  const policy = new SandboxPolicy([
    ...(args.fullAuto ? SandboxPolicy.fullAuto().permissions : []),
    ...args.permissions,
  ]);
  const params: SandboxParams = {
    command: args.command,
    cwd: args.cwd,
    env: Deno.env.toObject(),
    timeoutMs: args.timeoutMs,
    runAs: args.runAs,
  };
  try {
    if (args.json) return await runJson(params, policy, args.stdin);
    const plan = prepareSandbox(params, policy);
    warn(plan);
    return args.timeoutMs === undefined
      ? runInPlace(plan)
      : await runSupervised(plan, args.timeoutMs);
  } catch (error) {
    if (!(error instanceof SandboxError)) throw error;
    fail(error.message);
    return exitCodeFor(error);
  }
}

/** Says on stderr, a line each, what the plan could not enforce and what its user should know. */
function warn(plan: SandboxPlan): void {
  if (plan.landlock.enforcement === "partial") {
    fail(`warning: partially enforced: ${plan.landlock.dropped.join("; ")}`);
  }
  for (const warning of plan.warnings) fail(`warning: ${warning}`);
}

/** Becomes the command: returns only when that failed. */
function runInPlace(plan: SandboxPlan): number {
  return applyAndExec(plan, {
    newProcessGroup: false,
    reporter: {
      execing() {},
      failed: (message) => fail(`Cannot apply the sandbox: ${message}; nothing was run`),
    },
  });
}

async function runSupervised(plan: SandboxPlan, timeoutMs: number): Promise<number> {
  const child = spawnPlan(plan, {
    timeoutMs,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  });
  const forwarders = FORWARDED.map((signal) => {
    const handler = () => child.kill(signal);
    Deno.addSignalListener(signal, handler);
    return { signal, handler };
  });
  try {
    const status = await child.status;
    if (status.timedOut) fail(`timed out after ${timeoutMs} ms; killed`);
    return status.exitCode;
  } finally {
    for (const { signal, handler } of forwarders) Deno.removeSignalListener(signal, handler);
  }
}

async function runJson(
  params: SandboxParams,
  policy: SandboxPolicy,
  stdin: boolean,
): Promise<number> {
  try {
    const plan = prepareSandbox(params, policy);
    warn(plan);
    const result = await execPlan(plan, {
      ...params,
      stdin: stdin
        ? new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer())
        : undefined,
    });
    const { stdoutBytes: _stdout, stderrBytes: _stderr, ...printable } = result;
    console.log(JSON.stringify(printable));
    return result.exitCode;
  } catch (error) {
    if (error instanceof SandboxError) {
      console.log(JSON.stringify({ error: { kind: error.kind, message: error.message } }));
    }
    throw error;
  }
}
