/**
 * The child's one job: apply a plan to this process's main thread and `execve` the command.
 * Shared by the CLI's in-place mode and the supervised child; it decides nothing.
 *
 * @module
 */

import type { SandboxPlan } from "../policy/plan.ts";
import { PLAN_VERSION } from "../policy/_plan_version.ts";
import { prepareLandlock, restrictSelf } from "../ffi/landlock.ts";
import { installSeccomp } from "../ffi/seccomp.ts";
import { dropBoundingSet, limitCapabilities, setIdentity } from "../ffi/credentials.ts";
import { fchdir, openPlanned, sameFile } from "../ffi/files.ts";
import { prepareForExec, setNoNewPrivs, setParentDeathSignal, setsid } from "../ffi/process.ts";
import { close, prepareExecve, strerror, SyscallError } from "../ffi/libc.ts";
import { joinLimitCgroups, prepareRlimits } from "./child_limits.ts";
import { pathOf, programCandidates } from "../policy/path_search.ts";

// errno values (include/uapi/asm-generic/errno-base.h).
const EPERM = 1;
const EAGAIN = 11;

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
  /**
   * Start a session of its own: a process group the supervisor can kill as a whole, and no
   * controlling terminal (the caller's terminal cannot be taken over or read through `/dev/tty`).
   */
  newSession: boolean;
  /** Where progress and failures go. */
  reporter: ChildReporter;
  /**
   * Gives the seccomp filter's listener to the supervisor, which answers the syscalls the plan
   * hands it (`seccomp.notify`); returns once the supervisor has its copy. Without it such a
   * plan cannot run (in place nobody could answer).
   */
  handOverListener?: (fd: number) => void;
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
  const open: number[] = [];
  let setLimits = () => {};
  try {
    if (plan.version !== PLAN_VERSION) {
      throw new Error(`Plan version ${plan.version} is not ${PLAN_VERSION}`);
    }
    if (!plan.runnable) {
      throw new Error(`The plan is not runnable: ${plan.landlock.dropped.join("; ")}`);
    }
    if (plan.proxy && plan.proxy.port === 0) {
      throw new Error("network-domain needs the supervisor's proxy, and this run has none");
    }
    // The order matters; each step needs something from the ones before it, or must not have
    // something the ones after take away.
    // A session of its own, so that the supervisor can signal all the command starts.
    if (options.newSession) setsid();
    // The cgroups, before anything forks; writing cgroup.procs needs the caller's rights. The
    // limits' cgroup v1 folders too: memory the child has now stays charged where it was.
    if (plan.supervision?.cgroupProcs) joinCgroup(plan.supervision.cgroupProcs);
    joinLimitCgroups(plan.supervision?.limitProcs ?? []);
    // Every planned path, opened with the caller's rights and checked to be the very file that
    // was planned: the working folder and each Landlock rule's parent.
    const cwdFd = openPlanned(plan.cwd, plan.cwdIdentity, true);
    open.push(cwdFd);
    const rulesetFd = plan.landlock.apply ? prepareLandlock(plan.landlock) : undefined;
    if (rulesetFd !== undefined) open.push(rulesetFd);
    // The bounding set, before any change of uid: PR_CAPBSET_DROP needs CAP_SETPCAP, which
    // leaves the effective set when root becomes another user.
    if (plan.capabilities) dropBoundingSet(plan.capabilities.dropBounding);
    // The identity: groups, gid, uid, in that order (see ffi/credentials.ts).
    if (plan.runAs) setIdentity(plan.runAs);
    // Worked out now, set right before execve: after the identity (a setuid while over
    // RLIMIT_NPROC would make execve fail), with nothing left to open.
    setLimits = prepareRlimits(plan.limits.rlimits);
    // After any change of credentials (which would clear it), before the command runs.
    if (plan.supervision) watchSupervisor(plan.supervision.parentPid);
    // With the command's identity: a folder it cannot enter is refused here, not later.
    if (plan.runAs) checkReachable(plan);
    try {
      fchdir(cwdFd);
    } catch (error) {
      // Search permission is what entering needs, and only this can tell: the folder was
      // opened without it (O_PATH).
      const who = plan.runAs ? plan.runAs.user : `uid ${Deno.uid()}`;
      throw new Error(
        `${who} cannot enter the working folder ${plan.cwd} (${
          error instanceof SyscallError ? strerror(error.errno) : error
        }): give it search permission, or choose another with --cwd`,
      );
    }
    // No-new-privs is required by the next two (without CAP_SYS_ADMIN); Landlock before seccomp
    // so that the filter cannot interfere with the ruleset's syscalls.
    if (plan.noNewPrivs) setNoNewPrivs();
    if (rulesetFd !== undefined) {
      open.pop();
      restrictSelf(rulesetFd);
    }
    if (plan.seccomp) {
      const notify = plan.seccomp.notify.length > 0;
      if (notify && !options.handOverListener) {
        throw new Error(
          `${
            plan.seccomp.notify.join(", ")
          } must be answered by a supervisor, and this run has none`,
        );
      }
      const listener = installSeccomp(plan.seccomp.program, notify);
      if (notify) {
        open.push(listener);
        options.handOverListener!(listener);
        close(open.pop()!);
      }
    }
    // Last, so that every step above ran with the rights it was planned with; the filter refuses
    // neither prctl nor capset (the seccomp tests allow every syscall its table does not name).
    if (plan.capabilities) limitCapabilities(plan.capabilities.keep);
    close(open.pop()!);
    prepareForExec();
  } catch (error) {
    for (const fd of open) close(fd);
    options.reporter.failed(error instanceof Error ? error.message : String(error));
    return EXIT_SANDBOX_FAILED;
  }

  options.reporter.execing();
  return execProgram(plan.argv, plan.env, setLimits, options.reporter.failed);
}

/**
 * Runs the program as a shell would: the first executable file `PATH` finds, a script without
 * `#!` through `/bin/sh`. Which candidate to run is decided from what Deno's own file calls
 * report (errors captured natively), never from `errno` read after `execve` failed: that takes
 * a second FFI call, and whatever the engine does on this thread in between can change it.
 * `errno` only words the message when the chosen program could not be run. The rlimits are set
 * right before the call (`setLimits`), with nothing left to allocate.
 * @returns The exit code, when it could not be run.
 */
function execProgram(
  argv: readonly string[],
  env: readonly string[],
  setLimits: () => void,
  failed: (message: string) => void,
): number {
  const program = argv[0];
  let refused: { candidate: string; why: string } | undefined;
  for (const candidate of programCandidates(program, pathOf(env))) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(candidate);
    } catch (error) {
      if (error instanceof Deno.errors.PermissionDenied) {
        refused ??= { candidate, why: "Permission denied" };
      }
      continue;
    }
    // As execvp(3) does: a folder or a file without execute bits is passed over.
    if (info.isDirectory) {
      refused ??= { candidate, why: "Is a directory" };
      continue;
    }
    if (((info.mode ?? 0o777) & 0o111) === 0) {
      refused ??= { candidate, why: "not executable (no execute permission)" };
      continue;
    }
    // Everything encoded before the limits: past RLIMIT_AS the engine may not allocate.
    const direct = prepareExecve(candidate, argv, env);
    // A file without a #! line is a shell script to every shell and to execvp(3).
    const script = isShellScript(candidate)
      ? prepareExecve("/bin/sh", ["/bin/sh", candidate, ...argv.slice(1)], env)
      : undefined;
    setLimits();
    const errno = direct();
    script?.();
    if (errno === EAGAIN) {
      // The command's user has more tasks than RLIMIT_NPROC allows (the kernel marked us at
      // setuid): a fact of the system at this moment, not of the program.
      failed(
        `${program} cannot be started: its user has more processes than RLIMIT_NPROC allows ` +
          `(execve: ${strerror(errno)})`,
      );
      return EXIT_SANDBOX_FAILED;
    }
    const why = errno === EPERM
      ? " (the kernel says so for a program marked with file capabilities that the sandbox " +
        "took away)"
      : "";
    return notRun(program, `cannot be run: ${strerror(errno)}${why}`, EXIT_NOT_EXECUTABLE);
  }
  if (refused) return notRun(program, refused.why, EXIT_NOT_EXECUTABLE);
  if (program.includes("/")) return notRun(program, "No such file or directory", EXIT_NOT_FOUND);
  writeStderr(`llmx-sandbox: ${program}: command not found\n`);
  return EXIT_NOT_FOUND;
}

/** Whether a file the kernel would not run is a script without `#!`: readable text, no ELF. */
function isShellScript(path: string): boolean {
  let head: Uint8Array;
  try {
    const file = Deno.openSync(path);
    try {
      head = new Uint8Array(4);
      const read = file.readSync(head) ?? 0;
      head = head.subarray(0, read);
    } finally {
      file.close();
    }
  } catch {
    return false;
  }
  const elf = head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
  const shebang = head[0] === 0x23 && head[1] === 0x21;
  return !elf && !shebang;
}

/**
 * With another identity: the working folder must be reachable by its path, as the same folder
 * that was planned (the descriptor opened before the switch would otherwise hide that the user
 * cannot enter it).
 */
function checkReachable(plan: SandboxPlan): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(plan.cwd);
  } catch (error) {
    throw new Error(
      `${plan.runAs!.user} cannot enter the working folder ${plan.cwd}: ${
        error instanceof Error ? error.message : error
      }`,
    );
  }
  const born = info.birthtime?.getTime();
  if (
    !sameFile({ dev: info.dev, ino: info.ino ?? 0, ...(born ? { born } : {}) }, plan.cwdIdentity)
  ) {
    throw new Error(`${plan.cwd} is not the folder that was planned: it was replaced`);
  }
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

function notRun(program: string, why: string, code: number): number {
  writeStderr(`llmx-sandbox: ${program}: ${why}\n`);
  return code;
}

function writeStderr(text: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(text));
  } catch {
    // Nothing left to tell it to.
  }
}
