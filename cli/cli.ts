/**
 * The CLI: parse, plan, then either become the command in place or supervise a child.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { parseCliArgs, UsageError } from "./parse_args.ts";
import { PolicyError, SandboxPolicy } from "../policy/sandbox_policy.ts";
import { planSandbox, type SandboxPlan } from "../policy/plan.ts";
import { probeKernel } from "../exec/kernel.ts";
import { applyAndExec, EXIT_SANDBOX_FAILED } from "../exec/child.ts";
import { runSupervised } from "../exec/supervise.ts";
import { SandboxError } from "../exec/errors.ts";

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

function fail(message: string): void {
  console.error(`llmx-sandbox: ${message}`);
}

/**
 * Runs the CLI.
 * @param argv The arguments after the program name.
 * @returns The exit code (when it did not become the command).
 */
export async function cliMain(argv: readonly string[]): Promise<number> {
  let plan: SandboxPlan;
  let timeoutMs: number | undefined;
  try {
    const args = parseCliArgs(argv);
    if (args.help) {
      console.log(HELP);
      return 0;
    }
    if (args.version) {
      console.log(`llmx-sandbox ${denoJson.version}`);
      return 0;
    }
    if (args.command.length === 0) throw new UsageError("No command given (see --help)");
    const policy = new SandboxPolicy([
      ...(args.fullAuto ? SandboxPolicy.fullAuto().permissions : []),
      ...args.permissions,
    ]);
    timeoutMs = args.timeoutMs;
    plan = planSandbox(
      policy,
      { argv: args.command, cwd: args.cwd ?? Deno.cwd(), env: Deno.env.toObject() },
      probeKernel(),
    );
  } catch (error) {
    if (error instanceof UsageError || error instanceof PolicyError) {
      fail(error.message);
      return EXIT_USAGE;
    }
    throw error;
  }

  if (!plan.runnable) {
    fail(
      `Cannot apply the sandbox: ${plan.landlock.dropped.join("; ")}. Enable Landlock ` +
        `(CONFIG_SECURITY_LANDLOCK=y and "landlock" in the lsm= boot parameter) or run with ` +
        `-s disk-full-write-access; nothing was run`,
    );
    return EXIT_SANDBOX_FAILED;
  }
  if (plan.landlock.enforcement === "partial") {
    fail(`warning: partially enforced: ${plan.landlock.dropped.join("; ")}`);
  }

  if (timeoutMs === undefined) {
    return applyAndExec(plan, {
      newProcessGroup: false,
      reporter: {
        execing() {},
        failed: (message) => fail(`Cannot apply the sandbox: ${message}; nothing was run`),
      },
    });
  }
  try {
    const status = await runSupervised(plan, { timeoutMs, forwardSignals: true });
    if (status.timedOut) fail(`timed out after ${timeoutMs} ms; killed`);
    return status.exitCode;
  } catch (error) {
    if (error instanceof SandboxError) {
      fail(error.message);
      return EXIT_SANDBOX_FAILED;
    }
    throw error;
  }
}
