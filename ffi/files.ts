/**
 * Opening a planned path as exactly the file that was planned: `O_PATH` without following a
 * final symlink, then `fstat` compared with the identity the parent saw. A path swapped between
 * planning and applying (a symlink put in its place, another folder renamed onto it) is refused,
 * never silently enforced on something else.
 *
 * @module
 */

import type { FileIdentity } from "../policy/landlock.ts";
import { addressOf, close, cString, syscall, SyscallError } from "./libc.ts";

// From include/uapi/asm-generic/fcntl.h (x86_64 and aarch64 agree).
const AT_FDCWD = -100;
const O_PATH = 0o10000000;
const O_NOFOLLOW = 0o400000;
const O_CLOEXEC = 0o2000000;

/**
 * The identity of an open descriptor (`fstat`: `st_dev` and `st_ino` are the first two 64-bit
 * fields of `struct stat` on x86_64 and on aarch64).
 * @param fd The descriptor.
 * @returns Its device and inode, as numbers (as `Deno.FileInfo` gives them).
 */
export function identityOf(fd: number): FileIdentity {
  const stat = new BigUint64Array(32);
  syscall("fstat", fd, addressOf(stat));
  return { dev: Number(stat[0]), ino: Number(stat[1]) };
}

/**
 * Opens `path` with `O_PATH`, not following a final symlink, and checks that it is the planned
 * file. The caller closes the descriptor.
 * @param path A canonical path.
 * @param planned The identity it had when planned.
 * @returns The descriptor.
 * @throws {SyscallError} When it cannot be opened; {Error} when it is another file now.
 */
export function openPlanned(path: string, planned: FileIdentity): number {
  const name = cString(path);
  let fd: number;
  try {
    fd = Number(syscall("openat", AT_FDCWD, addressOf(name), O_PATH | O_NOFOLLOW | O_CLOEXEC, 0));
  } catch (error) {
    if (error instanceof SyscallError) throw new SyscallError("open", error.errno, path);
    throw error;
  }
  const found = identityOf(fd);
  if (found.dev !== planned.dev || found.ino !== planned.ino) {
    close(fd);
    throw new Error(
      `${path} is not the file that was planned (device ${found.dev}, inode ${found.ino} instead ` +
        `of ${planned.dev}, ${planned.ino}): it was replaced after planning`,
    );
  }
  return fd;
}

/**
 * `fchdir(2)`: makes an open folder the working folder, with the caller's rights checked now.
 * @param fd A descriptor of a folder (`O_PATH` will do).
 */
export function fchdir(fd: number): void {
  syscall("fchdir", fd);
}
