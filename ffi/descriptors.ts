/**
 * Descriptors the supervisor shares with its child without a file anyone else could reach: a
 * pipe for the child's report and a sealed memory file for the plan. The child opens them
 * through `/proc/PARENT/fd/N` before it restricts itself; afterwards nothing in the sandbox can
 * (Landlock refuses `/proc` access to processes outside the domain), and no folder holds them
 * that a command with write access could forge, read or delete.
 *
 * @module
 */

import { addressOf, close, cString, syscall } from "./libc.ts";

// From include/uapi/asm-generic/fcntl.h and include/uapi/linux/memfd.h.
const O_CLOEXEC = 0o2000000;
const MFD_CLOEXEC = 1;
const MFD_ALLOW_SEALING = 2;
const F_ADD_SEALS = 1033;
const F_SEAL_SEAL = 1;
const F_SEAL_SHRINK = 2;
const F_SEAL_GROW = 4;
const F_SEAL_WRITE = 8;

/** Both ends of a pipe, close-on-exec (other children of this process never inherit them). */
export interface Pipe {
  /** The read end. */
  read: number;
  /** The write end. */
  write: number;
}

/**
 * `pipe2(O_CLOEXEC)`.
 * @returns The two ends.
 */
export function makePipe(): Pipe {
  const fds = new Int32Array(2);
  syscall("pipe2", addressOf(fds), O_CLOEXEC);
  return { read: fds[0], write: fds[1] };
}

/**
 * Writes all of `bytes` to a descriptor (`write(2)` until done).
 * @param fd The descriptor.
 * @param bytes What to write.
 */
export function writeAll(fd: number, bytes: Uint8Array<ArrayBuffer>): void {
  let offset = 0;
  while (offset < bytes.length) {
    const part = bytes.subarray(offset);
    offset += Number(syscall("write", fd, addressOf(part), part.length));
  }
}

/**
 * A memory file holding `bytes`, sealed against any change: nobody, the supervisor included,
 * can write, grow or shrink it once made.
 * @param name A name for `/proc/PID/fd` listings.
 * @param bytes The content.
 * @returns Its descriptor (close-on-exec).
 */
export function sealedMemoryFile(name: string, bytes: Uint8Array<ArrayBuffer>): number {
  const label = cString(name);
  const fd = Number(syscall("memfd_create", addressOf(label), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  try {
    writeAll(fd, bytes);
    syscall("fcntl", fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  } catch (error) {
    close(fd);
    throw error;
  }
  return fd;
}

export { close } from "./libc.ts";
