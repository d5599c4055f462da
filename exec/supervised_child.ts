/**
 * The supervised child's entry: read the plan the parent wrote, open the private channel, and
 * apply the plan. Loads nothing else: no CLI parser, no config.
 *
 * @module
 */

import type { SandboxPlan } from "../policy/plan.ts";
import { applyAndExec, EXIT_SANDBOX_FAILED } from "./child.ts";
import { sha256Hex } from "./_sha256.ts";

/** The argument that makes a compiled binary (or `main.ts`) act as the supervised child. */
export const CHILD_FLAG = "--llmx-sandbox-internal-child";

/** The names under which the command's environment reaches the child: `${prefix}0`, `1`, ... */
export const COMMAND_ENV_PREFIX = "LLMX_SANDBOX_ENV_";

/** What the child writes to the channel; the parent reads it after the child ends. */
export const CHANNEL = { started: "started", exec: "exec", error: "error" } as const;

/**
 * Runs the supervised child and exits with what `applyAndExec` returns (on success it never
 * returns: the process is the command).
 * @param args `[planPath, planDigest, channelPath]`.
 */
export function runSupervisedChild(args: readonly string[]): never {
  const [planPath, planDigest, channelPath] = args;
  let channel: Deno.FsFile | undefined;
  const say = (line: string) => channel?.writeSync(new TextEncoder().encode(`${line}\n`));
  try {
    // Deno opens files close-on-exec: a successful execve closes the channel.
    channel = Deno.openSync(channelPath, { write: true, append: true });
    say(CHANNEL.started);
    const planBytes = Deno.readFileSync(planPath);
    if (sha256Hex(planBytes) !== planDigest) {
      throw new Error(`The plan file ${planPath} was changed after the supervisor wrote it`);
    }
    const plan = JSON.parse(new TextDecoder().decode(planBytes)) as SandboxPlan;
    // The command's environment came in ours, not in the file (see childEnvironment()).
    plan.env = [];
    for (let i = 0;; i++) {
      const entry = Deno.env.get(`${COMMAND_ENV_PREFIX}${i}`);
      if (entry === undefined) break;
      plan.env.push(entry);
    }
    const code = applyAndExec(plan, {
      newProcessGroup: true,
      reporter: {
        execing: () => say(CHANNEL.exec),
        failed: (message) => say(`${CHANNEL.error}\t${message.replaceAll("\n", " ")}`),
      },
    });
    Deno.exit(code);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    try {
      say(`${CHANNEL.error}\t${message.replaceAll("\n", " ")}`);
    } catch {
      // The parent sees a channel without "exec" and reports the child's failure itself.
    }
    Deno.exit(EXIT_SANDBOX_FAILED);
  }
}

// A program compiled with this library (`deno compile`) is started again as its own child:
// take over at import time, before the program's own code runs.
if (Deno.build.standalone && Deno.args[0] === CHILD_FLAG) runSupervisedChild(Deno.args.slice(1));
