/**
 * The process-level steps around `execve`: no-new-privileges, the signal state and the
 * descriptors the command inherits.
 *
 * @module
 */

import { prctl, resetSignal, syscall, unblockAllSignals } from "./libc.ts";

// From include/uapi/linux/prctl.h, close_range.h and asm/signal.h.
const PR_SET_PDEATHSIG = 1;
const PR_SET_NO_NEW_PRIVS = 38;
const CLOSE_RANGE_CLOEXEC = 1 << 2;
const SIGPIPE = 13;

export { execve, SyscallError } from "./libc.ts";

/**
 * `setsid(2)`: a new session and process group led by the caller, with no controlling terminal.
 * @returns The new session's id.
 */
export function setsid(): number {
  return Number(syscall("setsid"));
}

/** Sets `PR_SET_NO_NEW_PRIVS`: no setuid bit or file capability can raise the command's rights. */
export function setNoNewPrivs(): void {
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

/**
 * Has the kernel send `signal` to this process when the thread that started it exits. Cleared
 * by any change of credentials, so it is set after those.
 * @param signal The signal number, e.g. 9.
 */
export function setParentDeathSignal(signal: number): void {
  prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0);
}

/**
 * Puts the signal state and descriptors back to what a shell would hand a command: SIGPIPE to
 * its default (Deno ignores it, and an ignored signal survives `execve`), no blocked signal,
 * and every descriptor above 2 close-on-exec (an inherited descriptor bypasses Landlock, which
 * checks only at open time).
 */
export function prepareForExec(): void {
  resetSignal(SIGPIPE);
  unblockAllSignals();
  syscall("close_range", 3, 0xffffffff, CLOSE_RANGE_CLOEXEC);
}
