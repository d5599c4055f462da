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

// From include/uapi/linux/stat.h and fcntl.h.
const AT_EMPTY_PATH = 0x1000;
const STATX_TYPE = 0x1;
const STATX_INO = 0x100;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const STATX_BTIME = 0x800;

/**
 * The identity of an open descriptor (`statx`, the same layout on every architecture).
 * @param fd The descriptor.
 * @returns Its device (encoded as glibc's `makedev`, as `Deno.FileInfo` gives it), inode, and
 * birth time in milliseconds when the filesystem has one.
 */
export function identityOf(fd: number): FileIdentity & { directory: boolean } {
  const buffer = new Uint8Array(256);
  const empty = cString("");
  const wanted = STATX_TYPE | STATX_INO | STATX_BTIME;
  syscall("statx", fd, addressOf(empty), AT_EMPTY_PATH, wanted, addressOf(buffer));
  const view = new DataView(buffer.buffer);
  const mask = view.getUint32(0, true);
  const ino = Number(view.getBigUint64(32, true));
  const major = BigInt(view.getUint32(136, true));
  const minor = BigInt(view.getUint32(140, true));
  const dev = ((major & 0xfffff000n) << 32n) | ((major & 0xfffn) << 8n) |
    ((minor & 0xffffff00n) << 12n) | (minor & 0xffn);
  const directory = (view.getUint16(28, true) & S_IFMT) === S_IFDIR;
  const identity: FileIdentity & { directory: boolean } = { dev: Number(dev), ino, directory };
  if (mask & STATX_BTIME) {
    const seconds = view.getBigInt64(80, true);
    const nanoseconds = view.getUint32(88, true);
    identity.born = Number(seconds) * 1000 + Math.floor(nanoseconds / 1e6);
  }
  return identity;
}

/**
 * Opens `path` with `O_PATH`, not following a final symlink, and checks that it is the planned
 * file. The caller closes the descriptor.
 * @param path A canonical path.
 * @param planned The identity it had when planned.
 * @param directory Whether it was a directory when planned.
 * @returns The descriptor.
 * @throws {SyscallError} When it cannot be opened; {Error} when it is another file now.
 */
export function openPlanned(path: string, planned: FileIdentity, directory: boolean): number {
  const name = cString(path);
  let fd: number;
  try {
    fd = Number(syscall("openat", AT_FDCWD, addressOf(name), O_PATH | O_NOFOLLOW | O_CLOEXEC, 0));
  } catch (error) {
    if (error instanceof SyscallError) throw new SyscallError("open", error.errno, path);
    throw error;
  }
  const found = identityOf(fd);
  if (!sameFile(found, planned) || found.directory !== directory) {
    close(fd);
    const describe = (file: FileIdentity & { directory?: boolean }, isDirectory: boolean) =>
      `${isDirectory ? "folder" : "file"} ${file.dev}:${file.ino}` +
      (file.born === undefined ? "" : ` made at ${new Date(file.born).toISOString()}`);
    throw new Error(
      `${path} is not what was planned (a ${describe(found, found.directory)}, not the ` +
        `${describe(planned, directory)}): it was replaced after planning`,
    );
  }
  return fd;
}

/**
 * Whether two identities name the same file: device and inode, and birth time where both have
 * one (a freed inode number reused by a new file at the same path has another).
 * @param a One identity.
 * @param b The other.
 * @returns `true` when they are the same file.
 */
export function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino &&
    (a.born === undefined || b.born === undefined || a.born === b.born);
}

/**
 * `fchdir(2)`: makes an open folder the working folder, with the caller's rights checked now.
 * @param fd A descriptor of a folder (`O_PATH` will do).
 */
export function fchdir(fd: number): void {
  syscall("fchdir", fd);
}
