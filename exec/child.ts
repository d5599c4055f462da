/**
 * The child's one job: apply a plan to this process's main thread and `execve` the command.
 * Shared by the CLI's in-place mode and the supervised child; it decides nothing.
 *
 * @module
 */

import type { SandboxPlan } from "../policy/plan.ts";
import { PLAN_VERSION } from "../policy/_plan_version.ts";
import { applyLandlock } from "../ffi/landlock.ts";
import { installSeccomp } from "../ffi/seccomp.ts";
import { dropBoundingSet, limitCapabilities, setIdentity } from "../ffi/credentials.ts";
import {
  execve,
  prepareForExec,
  setNoNewPrivs,
  setParentDeathSignal,
  setpgid,
} from "../ffi/process.ts";
import { EACCES, ENOENT, ENOEXEC, ENOTDIR, strerror } from "../ffi/libc.ts";
import { pathOf, programCandidates } from "../policy/path_search.ts";

/** Exit code when the sandbox could not be applied; nothing ran. */
export const EXIT_SANDBOX_FAILED = 125;
/** Exit code when the program exists but cannot be run. */
export const EXIT_NOT_EXECUTABLE = 126;
/** Exit code when the program is not found. */
export const EXIT_NOT_FOUND = 127;

/** Where the child says how far it got; a line each. */
export interface ChildReporter {
  /** Called once the sandbox is applied, right before the first `execve`. */
  execing(): void;
  /** Called when the sandbox could not be applied; the child then exits 125. */
  failed(message: string): void;
}

/** How the child runs. */
export interface ChildOptions {
  /** Start a process group of its own, so that the supervisor can kill all of it. */
  newProcessGroup: boolean;
  /** Where progress and failures go. */
  reporter: ChildReporter;
}

/**
 * Applies the plan to the calling thread and becomes the command. Returns only with the exit
 * code to use when it could not: 125 when the sandbox failed (after `reporter.failed`), 126 or
 * 127 when the program could not be run (after a message on stderr, as a shell prints it).
 *
 * @param plan The plan the parent made.
 * @param options How to run.
 * @returns The exit code; on success it does not return.
 */
export function applyAndExec(plan: SandboxPlan, options: ChildOptions): number {
  try {
    if (plan.version !== PLAN_VERSION) {
      throw new Error(`Plan version ${plan.version} is not ${PLAN_VERSION}`);
    }
    if (!plan.runnable) {
      throw new Error(`The plan is not runnable: ${plan.landlock.dropped.join("; ")}`);
    }
    // The order matters; each step needs something from the ones before it, or must not have
    // something the ones after take away.
    // A process group of its own, so that the supervisor can signal all the command starts.
    if (options.newProcessGroup) setpgid(0, 0);
    // The cgroup, before anything forks; writing cgroup.procs needs the caller's rights.
    if (plan.supervision?.cgroupProcs) joinCgroup(plan.supervision.cgroupProcs);
    // The bounding set, before any change of uid: PR_CAPBSET_DROP needs CAP_SETPCAP, which
    // leaves the effective set when root becomes another user.
    if (plan.capabilities) dropBoundingSet(plan.capabilities.dropBounding);
    // The identity: groups, gid, uid, in that order (see ffi/credentials.ts).
    if (plan.runAs) setIdentity(plan.runAs);
    // After any change of credentials (which would clear it), before the command runs.
    if (plan.supervision) watchSupervisor(plan.supervision.parentPid);
    // With the command's identity: a folder it cannot enter is refused here, not later.
    Deno.chdir(plan.cwd);
    // No-new-privs is required by the next two (without CAP_SYS_ADMIN); Landlock before seccomp
    // so that the filter cannot interfere with the ruleset's syscalls.
    if (plan.noNewPrivs) setNoNewPrivs();
    if (plan.landlock.apply) applyLandlock(plan.landlock);
    if (plan.seccomp) installSeccomp(plan.seccomp.program);
    // Last, so that every step above ran with the rights it was planned with; the filter refuses
    // neither prctl nor capset (the seccomp tests allow every syscall its table does not name).
    if (plan.capabilities) limitCapabilities(plan.capabilities.keep);
    prepareForExec();
  } catch (error) {
    options.reporter.failed(error instanceof Error ? error.message : String(error));
    return EXIT_SANDBOX_FAILED;
  }

  options.reporter.execing();
  const program = plan.argv[0];
  let denied = 0;
  for (const candidate of programCandidates(program, pathOf(plan.env))) {
    const errno = execve(candidate, plan.argv, plan.env);
    if (errno === ENOEXEC) {
      // A file without a #! line is a shell script to every shell and to execvp(3).
      const fallback = execve("/bin/sh", ["/bin/sh", candidate, ...plan.argv.slice(1)], plan.env);
      return notRun(program, fallback, EXIT_NOT_EXECUTABLE);
    }
    if (errno === ENOENT || errno === ENOTDIR) continue;
    if (errno === EACCES) {
      denied = errno;
      continue;
    }
    return notRun(program, errno, EXIT_NOT_EXECUTABLE);
  }
  if (denied) return notRun(program, denied, EXIT_NOT_EXECUTABLE);
  if (program.includes("/")) return notRun(program, ENOENT, EXIT_NOT_FOUND);
  writeStderr(`llmx-sandbox: ${program}: command not found\n`);
  return EXIT_NOT_FOUND;
}

function joinCgroup(procs: string): void {
  if (inCgroup(procs)) return;
  // Every descendant is then in the cgroup the supervisor kills. The supervisor moves us there
  // while we start (a move waits for an RCU grace period, 10-20 ms); we join ourselves only if
  // that has not happened yet.
  Deno.writeTextFileSync(procs, String(Deno.pid));
}

function watchSupervisor(parentPid: number): void {
  const SIGKILL = 9;
  setParentDeathSignal(SIGKILL);
  // The supervisor may have died before the line above: then nobody would kill us.
  if (Deno.ppid !== parentPid) {
    throw new Error(`The supervisor (pid ${parentPid}) is gone`);
  }
}

function inCgroup(procsPath: string): boolean {
  const own = Deno.readTextFileSync("/proc/self/cgroup").split("\n").find((line) =>
    line.startsWith("0::")
  );
  return own !== undefined && procsPath.endsWith(`${own.slice(3)}/cgroup.procs`);
}

function notRun(program: string, errno: number, code: number): number {
  writeStderr(`llmx-sandbox: ${program}: ${strerror(errno)}\n`);
  return code;
}

function writeStderr(text: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(text));
  } catch {
    // Nothing left to tell it to.
  }
}
