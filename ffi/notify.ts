/**
 * The supervisor's side of seccomp user notification: taking a descriptor out of a process it
 * started (`pidfd_getfd`), receiving what the command asked, answering it, and acting on the
 * command's own socket (a descriptor taken out of it is the same socket).
 *
 * @module
 */

import { addressOf, close, pollAsync, syscall, SyscallError } from "./libc.ts";

// From include/uapi/linux/seccomp.h (struct seccomp_notif is 80 bytes, seccomp_notif_resp 24),
// asm-generic/ioctl.h, poll.h and socket.h.
const SECCOMP_IOCTL_NOTIF_RECV = 0xc0502100;
const SECCOMP_IOCTL_NOTIF_SEND = 0xc0182101;
const SECCOMP_IOCTL_NOTIF_ID_VALID = 0x40082102;
const POLLIN = 0x1;
const POLLERR = 0x8;
const POLLHUP = 0x10;

// From include/uapi/linux/pidfd.h: a pidfd for a thread, not only a process (Linux 6.9).
const PIDFD_THREAD = 0o200;

/**
 * Copies a descriptor out of another process (one this process may ptrace: its own child).
 * @param pid The process, or one of its threads (a request's caller).
 * @param fd Its descriptor.
 * @returns A descriptor of this process on the same open file (close-on-exec).
 * @throws {SyscallError} When the process is gone or may not be reached.
 */
export function takeDescriptor(pid: number, fd: number): number {
  let pidfd: number;
  try {
    pidfd = Number(syscall("pidfd_open", pid, PIDFD_THREAD));
  } catch {
    // Before 6.9 only a process's leader has a pidfd: find the thread's process.
    pidfd = Number(syscall("pidfd_open", threadGroupOf(pid), 0));
  }
  try {
    return Number(syscall("pidfd_getfd", pidfd, fd, 0));
  } finally {
    close(pidfd);
  }
}

function threadGroupOf(tid: number): number {
  const status = Deno.readTextFileSync(`/proc/${tid}/status`);
  const tgid = /^Tgid:\s*(\d+)$/m.exec(status);
  if (!tgid) throw new Error(`No Tgid for thread ${tid}`);
  return Number(tgid[1]);
}

/** One syscall the command made that the filter handed to the supervisor. */
export interface Notification {
  /** The kernel's id of the request, for the answer. */
  id: bigint;
  /** The calling thread's id. */
  pid: number;
  /** The syscall number. */
  nr: number;
  /** Its six arguments. */
  args: bigint[];
}

/**
 * Takes the next request (call only when `waitForRequest` said there is one).
 * @param listener The filter's listener.
 * @returns The request, or `undefined` when it went away (the caller was killed).
 */
export function receive(listener: number): Notification | undefined {
  // The kernel wants it zeroed: any byte set is taken for a newer, longer struct.
  const notif = new Uint8Array(80);
  try {
    syscall("ioctl", listener, SECCOMP_IOCTL_NOTIF_RECV, addressOf(notif));
  } catch (error) {
    if (error instanceof SyscallError) return undefined;
    throw error;
  }
  const view = new DataView(notif.buffer);
  return {
    id: view.getBigUint64(0, true),
    pid: view.getUint32(8, true),
    nr: view.getInt32(16, true),
    args: [0, 1, 2, 3, 4, 5].map((i) => view.getBigUint64(32 + 8 * i, true)),
  };
}

/**
 * Whether a request is still waiting for its answer (its caller alive and blocked in it): a
 * descriptor taken since then is the caller's own.
 * @param listener The filter's listener.
 * @param id The request.
 * @returns `true` when it is.
 */
export function stillWaiting(listener: number, id: bigint): boolean {
  const value = new BigUint64Array([id]);
  try {
    syscall("ioctl", listener, SECCOMP_IOCTL_NOTIF_ID_VALID, addressOf(value));
    return true;
  } catch {
    return false;
  }
}

/**
 * Answers a request: the syscall returns 0, or fails with `errno`.
 * @param listener The filter's listener.
 * @param id The request.
 * @param errno 0 for success, else the error the caller sees.
 */
export function respond(listener: number, id: bigint, errno: number): void {
  // struct seccomp_notif_resp { __u64 id; __s64 val; __s32 error; __u32 flags; }
  const resp = new Uint8Array(24);
  const view = new DataView(resp.buffer);
  view.setBigUint64(0, id, true);
  view.setInt32(16, -errno, true);
  try {
    syscall("ioctl", listener, SECCOMP_IOCTL_NOTIF_SEND, addressOf(resp));
  } catch {
    // The caller was killed meanwhile (ENOENT): nobody is waiting for the answer.
  }
}

/**
 * Waits, on a thread of its own, until the listener has a request, the filter has no process
 * left (hang-up), or `stop` becomes readable.
 * @param listener The filter's listener.
 * @param stop The read end of a pipe the supervisor writes to when it stops.
 * @returns What happened.
 */
export async function waitForRequest(
  listener: number,
  stop: number,
): Promise<"request" | "gone" | "stop"> {
  const events = await pollAsync([{ fd: listener, events: POLLIN }, { fd: stop, events: POLLIN }]);
  if (events === undefined) return "request";
  if (events[1] !== 0) return "stop";
  if (events[0] & (POLLHUP | POLLERR)) return "gone";
  return "request";
}

/** What a socket is bound to. */
export interface SocketName {
  /** `AF_UNIX`, `AF_INET`, `AF_INET6`, ... */
  family: number;
  /** The local port for `AF_INET` and `AF_INET6` (0 when not bound), else 0. */
  port: number;
}

/**
 * `getsockname(2)`.
 * @param fd A socket.
 * @returns Its family and port.
 * @throws {SyscallError} When it is not a socket.
 */
export function socketName(fd: number): SocketName {
  const address = new Uint8Array(128);
  const length = new Uint32Array([address.length]);
  syscall("getsockname", fd, addressOf(address), addressOf(length));
  const view = new DataView(address.buffer);
  const family = view.getUint16(0, true);
  const AF_INET = 2;
  const AF_INET6 = 10;
  const port = family === AF_INET || family === AF_INET6 ? view.getUint16(2, false) : 0;
  return { family, port };
}

/**
 * `listen(2)`.
 * @param fd A socket.
 * @param backlog The backlog.
 * @returns 0, or the errno it failed with.
 */
export function listenOn(fd: number, backlog: number): number {
  try {
    syscall("listen", fd, backlog);
    return 0;
  } catch (error) {
    if (error instanceof SyscallError) return error.errno;
    throw error;
  }
}

export { close } from "./libc.ts";
