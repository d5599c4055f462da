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

/** What the child writes to the channel; the parent reads it after the child ends. */
export const CHANNEL = {
  started: "started",
  exec: "exec",
  error: "error",
  listener: "listener",
} as const;

/**
 * Runs the supervised child and exits with what `applyAndExec` returns (on success it never
 * returns: the process is the command).
 * @param args `[parentPid, planFd, planDigest, channelFd, answerFd]`: the plan, the channel and
 * (when the supervisor answers, else -1) the answer pipe are descriptors of the supervisor,
 * opened here through `/proc/PARENT/fd/N`.
 */
export function runSupervisedChild(args: readonly string[]): never {
  const [parent, planFd, planDigest, channelFd, answerFd = "-1"] = args;
  let channel: Deno.FsFile | undefined;
  const say = (line: string) => channel?.writeSync(new TextEncoder().encode(`${line}\n`));
  try {
    // Only the supervisor that started us: its descriptors are the ones named.
    if (String(Deno.ppid) !== parent) {
      throw new Error(`Started by ${Deno.ppid}, not by the supervisor ${parent}`);
    }
    const descriptor = (fd: string) => `/proc/${parent}/fd/${fd}`;
    // Deno opens files close-on-exec: a successful execve closes the channel.
    channel = Deno.openSync(descriptor(channelFd), { write: true });
    const answers = answerFd === "-1" ? undefined : Deno.openSync(descriptor(answerFd));
    const planBytes = Deno.readFileSync(descriptor(planFd));
    say(CHANNEL.started);
    if (sha256Hex(planBytes) !== planDigest) {
      throw new Error("The plan is not the one the supervisor made (its digest differs)");
    }
    const plan = JSON.parse(new TextDecoder().decode(planBytes)) as SandboxPlan;
    const code = applyAndExec(plan, {
      newSession: true,
      reporter: {
        execing: () => say(CHANNEL.exec),
        failed: (message) => say(`${CHANNEL.error}\t${message.replaceAll("\n", " ")}`),
      },
      handOverListener: answers &&
        ((fd) => {
          // The supervisor takes a copy with pidfd_getfd, then answers: ours goes at execve.
          say(`${CHANNEL.listener}\t${fd}`);
          const answer = readLine(answers);
          if (answer !== "ok") {
            throw new Error(`The supervisor cannot answer listen(): ${answer || "no answer"}`);
          }
        }),
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

/** Reads one line (blocking), without its newline; what came before the end when there is none. */
function readLine(file: Deno.FsFile): string {
  const bytes: number[] = [];
  const one = new Uint8Array(1);
  while ((file.readSync(one) ?? 0) === 1 && one[0] !== 0x0a) bytes.push(one[0]);
  return new TextDecoder().decode(new Uint8Array(bytes));
}

// A program compiled with this library (`deno compile`) is started again as its own child:
// take over at import time, before the program's own code runs.
if (Deno.build.standalone && Deno.args[0] === CHILD_FLAG) runSupervisedChild(Deno.args.slice(1));
