/**
 * The one libc binding. Opens libc once and exposes typed wrappers that turn `-1` plus `errno`
 * into a thrown `SyscallError` named after the call. No other file calls `Deno.dlopen`.
 *
 * Every call here is synchronous and runs on the calling (main) thread: Landlock, seccomp and
 * `PR_SET_NO_NEW_PRIVS` apply to the calling thread, and `execve` carries them into the command.
 *
 * @module
 */

// Syscall numbers from arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h.
const SYSCALLS = {
  x86_64: {
    read: 0,
    write: 1,
    fstat: 5,
    statx: 332,
    ioctl: 16,
    listen: 50,
    getsockname: 51,
    fcntl: 72,
    fchdir: 81,
    setsid: 112,
    pipe2: 293,
    memfd_create: 319,
    pidfd_open: 434,
    pidfd_getfd: 438,
    setuid: 105,
    setgid: 106,
    getgroups: 115,
    setgroups: 116,
    getresuid: 118,
    getresgid: 120,
    capget: 125,
    capset: 126,
    openat: 257,
    prlimit64: 302,
    seccomp: 317,
    close_range: 436,
    landlock_create_ruleset: 444,
    landlock_add_rule: 445,
    landlock_restrict_self: 446,
  },
  aarch64: {
    read: 63,
    write: 64,
    fstat: 80,
    statx: 291,
    ioctl: 29,
    listen: 201,
    getsockname: 204,
    fcntl: 25,
    fchdir: 50,
    setsid: 157,
    pipe2: 59,
    memfd_create: 279,
    pidfd_open: 434,
    pidfd_getfd: 438,
    setuid: 146,
    setgid: 144,
    getgroups: 158,
    setgroups: 159,
    getresuid: 148,
    getresgid: 150,
    capget: 90,
    capset: 91,
    openat: 56,
    prlimit64: 261,
    seccomp: 277,
    close_range: 436,
    landlock_create_ruleset: 444,
    landlock_add_rule: 445,
    landlock_restrict_self: 446,
  },
} as const;

// From include/uapi/asm-generic/errno-base.h and errno.h.
export const ENOENT = 2;
export const E2BIG = 7;
export const ENOEXEC = 8;
export const EACCES = 13;
export const ENOTDIR = 20;
export const EINVAL = 22;
export const ENOSYS = 38;
export const EOPNOTSUPP = 95;

/** A libc call or system call that failed, with its errno. */
export class SyscallError extends Error {
  /** The call's name, e.g. `landlock_restrict_self`. */
  readonly syscall: string;
  /** The errno it set. */
  readonly errno: number;

  /**
   * @param syscall The call's name.
   * @param errno The errno it set.
   * @param detail What it was called on, if useful.
   */
  constructor(syscall: string, errno: number, detail = "") {
    super(`${syscall}${detail ? ` (${detail})` : ""} failed: ${strerror(errno)} (errno ${errno})`);
    this.name = "SyscallError";
    this.syscall = syscall;
    this.errno = errno;
  }
}

const I64 = "i64" as const;

function open() {
  const arch = Deno.build.arch;
  if (arch !== "x86_64" && arch !== "aarch64") {
    throw new Error(`Unsupported architecture: ${arch} (x86_64 and aarch64 only)`);
  }
  if (Deno.build.os !== "linux") throw new Error(`Unsupported OS: ${Deno.build.os} (Linux only)`);
  const lib = Deno.dlopen("libc.so.6", {
    // syscall(2) and prctl(2) are variadic: declared with fixed 64-bit parameters, which the
    // x86_64 and aarch64 calling conventions pass exactly as the variadic ones.
    syscall: { parameters: [I64, I64, I64, I64, I64, I64, I64], result: I64 },
    prctl: { parameters: [I64, I64, I64, I64, I64], result: "i32" },
    execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
    signal: { parameters: ["i32", "pointer"], result: "pointer" },
    sigprocmask: { parameters: ["i32", "buffer", "pointer"], result: "i32" },
    strerror: { parameters: ["i32"], result: "pointer" },
    __errno_location: { parameters: [], result: "pointer" },
    // On a thread of its own: the supervisor waits on descriptors without blocking the engine.
    poll: { parameters: ["pointer", "u64", "i32"], result: "i32", nonblocking: true },
  });
  return { lib, numbers: SYSCALLS[arch] };
}

let cached: ReturnType<typeof open> | undefined;
function libc(): ReturnType<typeof open> {
  return cached ??= open();
}

function errno(): number {
  // Read right after the failing call, on the same thread; nothing in between touches errno.
  return new Deno.UnsafePointerView(libc().lib.symbols.__errno_location()!).getInt32();
}

/**
 * The message libc gives for an errno.
 * @param code The errno.
 * @returns E.g. "Operation not permitted".
 */
export function strerror(code: number): string {
  const pointer = libc().lib.symbols.strerror(code);
  return pointer ? Deno.UnsafePointerView.getCString(pointer) : `errno ${code}`;
}

/** A NUL-terminated copy of a string, to pass as `char *`. */
export function cString(text: string): Uint8Array<ArrayBuffer> {
  if (text.includes("\0")) {
    throw new TypeError(`String contains a NUL byte: ${JSON.stringify(text)}`);
  }
  const bytes = new TextEncoder().encode(text);
  const buffer = new Uint8Array(bytes.length + 1);
  buffer.set(bytes);
  return buffer;
}

/** The address of a buffer, as the `i64` that `syscall` takes; the caller keeps `buffer` alive. */
export function addressOf(buffer: BufferSource | null): bigint {
  if (buffer === null) return 0n;
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
}

type SyscallName = keyof typeof SYSCALLS.x86_64;

/**
 * Calls a system call by name with up to six 64-bit arguments.
 * @param name The call, looked up for this architecture.
 * @param args Its arguments.
 * @returns The non-negative result.
 * @throws {SyscallError} When it returns -1.
 */
export function syscall(name: SyscallName, ...args: (bigint | number)[]): bigint {
  const { lib, numbers } = libc();
  const a = [0, 1, 2, 3, 4, 5].map((i) => BigInt(args[i] ?? 0));
  const result = lib.symbols.syscall(BigInt(numbers[name]), a[0], a[1], a[2], a[3], a[4], a[5]);
  if (result === -1n) throw new SyscallError(name, errno());
  return result;
}

/**
 * `prctl(2)`.
 * @param option The `PR_*` option.
 * @param args Up to four arguments.
 * @returns The result.
 * @throws {SyscallError} When it returns -1.
 */
export function prctl(option: number, ...args: (bigint | number)[]): number {
  const a = [0, 1, 2, 3].map((i) => BigInt(args[i] ?? 0));
  const result = libc().lib.symbols.prctl(BigInt(option), a[0], a[1], a[2], a[3]);
  if (result === -1) throw new SyscallError("prctl", errno(), `option ${option}`);
  return result;
}

/**
 * `close(2)`.
 * @param fd The descriptor.
 */
export function close(fd: number): void {
  if (libc().lib.symbols.close(fd) === -1) throw new SyscallError("close", errno());
}

/**
 * Restores a signal's default disposition (`SIG_DFL`).
 * @param signal The signal number.
 */
export function resetSignal(signal: number): void {
  // signal() returns SIG_ERR, (void *)-1, on failure.
  const previous = libc().lib.symbols.signal(signal, null);
  if (previous !== null && Deno.UnsafePointer.value(previous) === 0xffffffffffffffffn) {
    throw new SyscallError("signal", errno(), `signal ${signal}`);
  }
}

/** Unblocks every signal on the calling thread (`sigprocmask(SIG_SETMASK, {})`). */
export function unblockAllSignals(): void {
  const SIG_SETMASK = 2;
  const empty = new Uint8Array(128);
  if (libc().lib.symbols.sigprocmask(SIG_SETMASK, empty, null) === -1) {
    throw new SyscallError("sigprocmask", errno());
  }
}

/**
 * `poll(2)` on a thread of its own, with no timeout: resolves when one of the descriptors has
 * an event (or the call fails, with -1).
 * @param fds Descriptors, with the events wanted for each.
 * @returns What happened to each (`revents`), in order, or `undefined` when the call failed.
 */
export async function pollAsync(
  fds: readonly { fd: number; events: number }[],
): Promise<number[] | undefined> {
  // struct pollfd { int fd; short events; short revents; }
  const buffer = new ArrayBuffer(fds.length * 8);
  const view = new DataView(buffer);
  fds.forEach(({ fd, events }, i) => {
    view.setInt32(i * 8, fd, true);
    view.setInt16(i * 8 + 4, events, true);
  });
  const result = await libc().lib.symbols.poll(
    Deno.UnsafePointer.of(buffer),
    BigInt(fds.length),
    -1,
  );
  if (result === -1) return undefined;
  // `buffer` stays reachable until here, past the call that was given only its address.
  return fds.map((_, i) => view.getInt16(i * 8 + 6, true));
}

/**
 * `execve(2)`. Returns only on failure, with the errno (it does not throw, so that a caller can
 * try the next `PATH` entry).
 * @param path The program.
 * @param argv Its arguments, `argv[0]` included.
 * @param envp Its environment, `KEY=VALUE` each.
 * @returns The errno of the failure (read after the call: a hint for messages only).
 */
export function execve(path: string, argv: readonly string[], envp: readonly string[]): number {
  return prepareExecve(path, argv, envp)();
}

/**
 * Encodes everything `execve(2)` takes now, and returns the call: between the two nothing needs
 * to be allocated, so limits set in between (`RLIMIT_AS` below what the engine has mapped) do
 * not stop the engine before the call.
 * @param path The program.
 * @param argv Its arguments, `argv[0]` included.
 * @param envp Its environment, `KEY=VALUE` each.
 * @returns The call; it returns only on failure, with the errno.
 */
export function prepareExecve(
  path: string,
  argv: readonly string[],
  envp: readonly string[],
): () => number {
  const program = cString(path);
  const strings = [argv, envp].map((list) => list.map(cString));
  const [argvArray, envpArray] = strings.map((list) => {
    const pointers = new BigUint64Array(list.length + 1);
    list.forEach((buffer, i) => pointers[i] = addressOf(buffer));
    return pointers;
  });
  const symbols = libc().lib.symbols;
  return () => {
    symbols.execve(program, argvArray, envpArray);
    // The strings stay reachable through this closure across the call.
    if (strings.length !== 2) throw new Error("unreachable");
    return errno();
  };
}
