/**
 * The supervising parent: starts its own executable again as the sandboxed child, forwards
 * signals, enforces the timeout, and tells "the sandbox could not be applied" from the
 * command's own exit status. The parent itself is never restricted.
 *
 * @module
 */

import type { SandboxPlan } from "../policy/plan.ts";
import { SandboxError } from "./errors.ts";
import { signalNumber } from "./signals.ts";
import { CHANNEL, CHILD_FLAG } from "./supervised_child.ts";

/** How to supervise. */
export interface SuperviseOptions {
  /** Kill the command's process group after this many milliseconds. @default undefined (none) */
  timeoutMs?: number;
  /** Forward SIGINT, SIGTERM and SIGHUP received by this process to the command. @default false */
  forwardSignals?: boolean;
}

/** How the command ended. */
export interface SupervisedStatus {
  /** The exit code a shell would report: the command's, 128+N for signal N, 124 on timeout. */
  exitCode: number;
  /** The signal that killed it, if one did. */
  signal: Deno.Signal | null;
  /** Whether the timeout killed it. */
  timedOut: boolean;
}

/** Exit code when the timeout killed the command, as `timeout(1)` reports it. */
export const EXIT_TIMEOUT = 124;

const FORWARDED: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * The program and arguments that start this executable as the supervised child.
 * @param planPath The plan file.
 * @param channelPath The channel file.
 * @returns For `Deno.Command`.
 */
export function childInvocation(
  planPath: string,
  channelPath: string,
): { program: string; args: string[] } {
  const program = Deno.execPath();
  if (Deno.build.standalone) return { program, args: [CHILD_FLAG, planPath, channelPath] };
  return {
    program,
    args: [
      "run",
      "--allow-all",
      // The caller's deno.json, lock file and network must not shape or delay the child.
      "--no-config",
      "--no-lock",
      "--cached-only",
      "--quiet",
      new URL("./child_main.ts", import.meta.url).href,
      planPath,
      channelPath,
    ],
  };
}

/**
 * The fixed environment the Deno child starts with. The command's own environment travels in
 * the plan and reaches only `execve`: an `LD_PRELOAD` or `DENO_*` meant for the command must
 * never act on the still unrestricted child.
 * @returns The child's environment.
 */
export function childEnvironment(): Record<string, string> {
  const env: Record<string, string> = {
    PATH: "/usr/local/bin:/usr/bin:/bin",
    NO_COLOR: "1",
    DENO_NO_UPDATE_CHECK: "1",
  };
  // This process's own (not the command's) cache locations, so the child finds its modules.
  for (const key of ["HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(key);
    if (value) env[key] = value;
  }
  return env;
}

/**
 * Runs a plan in a supervised child with stdin, stdout and stderr inherited.
 *
 * @param plan The plan; must be runnable.
 * @param options Timeout and signal forwarding.
 * @returns How the command ended.
 * @throws {SandboxError} When the sandbox could not be applied; then the command did not run.
 */
export async function runSupervised(
  plan: SandboxPlan,
  options: SuperviseOptions = {},
): Promise<SupervisedStatus> {
  const dir = await Deno.makeTempDir({ prefix: "llmx-sandbox-" });
  try {
    await Deno.chmod(dir, 0o700);
    const planPath = `${dir}/plan.json`;
    const channelPath = `${dir}/channel`;
    await Deno.writeTextFile(planPath, JSON.stringify(plan), { mode: 0o600, createNew: true });
    await Deno.writeTextFile(channelPath, "", { mode: 0o600, createNew: true });

    const { program, args } = childInvocation(planPath, channelPath);
    const child = new Deno.Command(program, {
      args,
      cwd: "/",
      clearEnv: true,
      env: childEnvironment(),
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();

    const signalGroup = (signal: Deno.Signal) => {
      // The child makes its own process group; until it has, only its pid exists.
      for (const target of [-child.pid, child.pid]) {
        try {
          Deno.kill(target, signal);
          return;
        } catch {
          // Try the next target; the child may already be gone.
        }
      }
    };
    const forwarders = (options.forwardSignals ? FORWARDED : []).map((signal) => {
      const handler = () => signalGroup(signal);
      Deno.addSignalListener(signal, handler);
      return { signal, handler };
    });
    let timedOut = false;
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      signalGroup("SIGKILL");
    }, options.timeoutMs);

    let status: Deno.CommandStatus;
    try {
      status = await child.status;
    } finally {
      clearTimeout(timer);
      for (const { signal, handler } of forwarders) Deno.removeSignalListener(signal, handler);
    }

    const report = await Deno.readTextFile(channelPath);
    const lines = report.split("\n").filter(Boolean);
    const error = lines.find((line) => line.startsWith(`${CHANNEL.error}\t`));
    if (error) {
      throw new SandboxError(
        "apply-failed",
        `Cannot apply the sandbox: ${error.slice(CHANNEL.error.length + 1)}; nothing was run`,
      );
    }
    if (!lines.includes(CHANNEL.exec) && !timedOut) {
      const how = status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
      throw new SandboxError(
        "child-failed",
        `The sandbox child ended (${how}) before it could run the command; nothing was run`,
      );
    }
    if (timedOut) return { exitCode: EXIT_TIMEOUT, signal: status.signal, timedOut };
    if (status.signal) {
      return {
        exitCode: 128 + (signalNumber(status.signal) ?? 0),
        signal: status.signal,
        timedOut,
      };
    }
    return { exitCode: status.code, signal: null, timedOut };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
