/**
 * The seccomp part of a plan: the filter as data (which syscall, which condition on its
 * arguments, which action), and one function that compiles it to classic BPF. Pure.
 *
 * @module
 */

// Constants from include/uapi/linux/seccomp.h, audit.h, filter.h, socket.h and asm/ioctls.h.
export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_USER_NOTIF = 0x7fc00000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_AARCH64 = 0xc00000b7;
export const AUDIT_ARCH_I386 = 0x40000003;
export const X32_SYSCALL_BIT = 0x40000000;
export const EPERM = 1;
export const ENOSYS = 38;
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_SEQPACKET = 5;
export const SOCK_TYPE_MASK = 0xf;
export const IPPROTO_TCP = 6;
export const MSG_FASTOPEN = 0x20000000;
export const O_CREAT = 0o100;
export const O_TMPFILE_BIT = 0o20000000;
export const S_ISUID_ISGID = 0o6000;
export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;

export const BPF_LD_W_ABS = 0x20;
export const BPF_ALU_AND_K = 0x54;
export const BPF_JMP_JEQ_K = 0x15;
export const BPF_JMP_JSET_K = 0x45;
export const BPF_RET_K = 0x06;

/** `struct seccomp_data` offsets. */
export const SECCOMP_DATA_NR = 0;
export const SECCOMP_DATA_ARCH = 4;
/** Offset of `args[i]`'s low 32 bits (little-endian; both supported architectures are). */
export const seccompDataArgLow = (i: number): number => 16 + 8 * i;
/** Offset of `args[i]`'s high 32 bits. */
export const seccompDataArgHigh = (i: number): number => 20 + 8 * i;

/** The architectures this sandbox has syscall tables for. */
export type SeccompArch = "x86_64" | "aarch64";

/** Syscall numbers per architecture, for every syscall the filter names. */
export const SYSCALL_NUMBERS: Record<SeccompArch, Record<string, number>> = {
  x86_64: {
    open: 2,
    ioctl: 16,
    shmget: 29,
    shmat: 30,
    shmctl: 31,
    clone3: 435,
    semget: 64,
    semop: 65,
    semctl: 66,
    msgget: 68,
    msgsnd: 69,
    msgrcv: 70,
    msgctl: 71,
    creat: 85,
    chmod: 90,
    fchmod: 91,
    mknod: 133,
    semtimedop: 220,
    openat: 257,
    mknodat: 259,
    fchmodat: 268,
    openat2: 437,
    fchmodat2: 452,
    kill: 62,
    ptrace: 101,
    setpriority: 141,
    sched_setparam: 142,
    sched_setscheduler: 144,
    sched_setaffinity: 203,
    ioprio_set: 251,
    prlimit64: 302,
    sched_setattr: 314,
    add_key: 248,
    request_key: 249,
    keyctl: 250,
    process_vm_readv: 310,
    process_vm_writev: 311,
    pidfd_send_signal: 424,
    pidfd_getfd: 438,
    socket: 41,
    connect: 42,
    accept: 43,
    sendto: 44,
    sendmsg: 46,
    bind: 49,
    listen: 50,
    socketpair: 53,
    accept4: 288,
    sendmmsg: 307,
    io_uring_setup: 425,
    io_uring_enter: 426,
    io_uring_register: 427,
  },
  aarch64: {
    ioctl: 29,
    mknodat: 33,
    fchmod: 52,
    fchmodat: 53,
    openat: 56,
    msgget: 186,
    msgctl: 187,
    msgrcv: 188,
    msgsnd: 189,
    semget: 190,
    semctl: 191,
    semtimedop: 192,
    semop: 193,
    shmget: 194,
    shmctl: 195,
    shmat: 196,
    clone3: 435,
    openat2: 437,
    fchmodat2: 452,
    ptrace: 117,
    kill: 129,
    ioprio_set: 30,
    sched_setparam: 118,
    sched_setscheduler: 119,
    sched_setaffinity: 122,
    setpriority: 140,
    prlimit64: 261,
    sched_setattr: 274,
    add_key: 217,
    request_key: 218,
    keyctl: 219,
    process_vm_readv: 270,
    process_vm_writev: 271,
    pidfd_send_signal: 424,
    pidfd_getfd: 438,
    socket: 198,
    socketpair: 199,
    bind: 200,
    listen: 201,
    accept: 202,
    connect: 203,
    sendto: 206,
    sendmsg: 211,
    accept4: 242,
    sendmmsg: 269,
    io_uring_setup: 425,
    io_uring_enter: 426,
    io_uring_register: 427,
  },
};

/** `setpriority`'s `which` for every process of a uid (include/uapi/linux/resource.h). */
const PRIO_USER = 2;
/** `ioprio_set`'s `which` for every process of a uid (include/uapi/linux/ioprio.h). */
const IOPRIO_WHO_USER = 3;

/** Syscalls only some architectures have: rows for them are left out where they do not exist. */
const LEGACY = new Set(["open", "creat", "chmod", "mknod"]);

/** The `AUDIT_ARCH_*` value each architecture's native syscalls report. */
export const AUDIT_ARCH: Record<SeccompArch, number> = {
  x86_64: AUDIT_ARCH_X86_64,
  aarch64: AUDIT_ARCH_AARCH64,
};

/**
 * A test on one argument's low 32 bits (every argument tested is a C `int` or `unsigned int`,
 * of which the kernel reads only the low half), or on a whole 64-bit pointer being non-NULL.
 */
export type ArgCondition =
  | { arg: number; op: "eq" | "ne"; value: number; mask?: number }
  | { arg: number; op: "nonzero64" };

/**
 * One row of the filter: when `syscall` is called and every condition holds, fail with errno,
 * or (with `notify`) let the supervisor decide (`SECCOMP_RET_USER_NOTIF`).
 */
export interface SeccompRule {
  /** The syscall's name, looked up in `SYSCALL_NUMBERS`. */
  syscall: string;
  /** All must hold; none means always. */
  when: ArgCondition[];
  /** The errno returned instead of running the syscall (ignored with `notify`). */
  errno: number;
  /** The supervisor decides (and performs the call itself when it allows it). @default false */
  notify?: boolean;
  /** The threat this row closes, in one line, for `--explain` and for reviewers. */
  why: string;
}

/** What the rows depend on: what is restricted, and what Landlock already keeps inside. */
export interface SeccompRuleOptions {
  /** Whether the network is restricted (no `network-full-access`). */
  restrictNetwork: boolean;
  /**
   * Whether UNIX sockets to the outside are refused (no `network-unix-sockets`): with the
   * network allowed, no `AF_UNIX` socket may be made (a connect cannot be told apart by family).
   * @default true
   */
  restrictUnix?: boolean;
  /**
   * Whether the command runs as root under a restricted policy: then it may not set the
   * set-user-ID or set-group-ID bit on any file (the next user to run it would run it as root).
   * @default false
   */
  rootSetIdBits?: boolean;
  /** With the network restricted: whether some TCP ports may be connected to or bound. */
  tcp?: TcpAllowance;
  /**
   * Whether a Landlock domain is applied: the kernel then refuses ptrace-class access
   * (`ptrace`, `process_vm_readv`/`writev`, `pidfd_getfd`, `/proc/PID/mem`) to any process
   * outside the sandbox, since Landlock ABI 1. Without one, seccomp refuses those syscalls.
   * @default false (the rows are included)
   */
  ptraceScoped?: boolean;
  /**
   * Whether Landlock scopes signals (`LANDLOCK_SCOPE_SIGNAL`, ABI 6). Without it, seccomp
   * refuses what it can tell apart without knowing pids: `kill(-1)` and `pidfd_send_signal`.
   * @default false (the rows are included)
   */
  signalsScoped?: boolean;
}

/** What the filter is built from. */
export interface SeccompInput extends SeccompRuleOptions {
  /** The architecture of the process that installs the filter. */
  arch: SeccompArch;
}

/** Which TCP operations a policy opens (on the ports Landlock then allows). */
export interface TcpAllowance {
  /** `network-connect-tcp` was given. */
  connect: boolean;
  /** `network-bind-tcp` was given. */
  bind: boolean;
}

/** One classic BPF instruction (`struct sock_filter`). */
export interface BpfInstruction {
  /** The opcode (`BPF_LD | BPF_W | BPF_ABS`, ...). */
  code: number;
  /** Instructions to skip when the jump's condition holds. */
  jt: number;
  /** Instructions to skip when it does not. */
  jf: number;
  /** The constant operand. */
  k: number;
}

/** The seccomp part of a sandbox plan. */
export interface SeccompPlan {
  /** The architecture the program checks for. */
  arch: SeccompArch;
  /** The rows, in the order they are tested. */
  rules: SeccompRule[];
  /** What happens to other architectures and to x32 syscall numbers, in words. */
  refused: string[];
  /** The compiled program. */
  program: BpfInstruction[];
  /**
   * The syscalls the supervisor decides (user notification): such a plan runs only under a
   * supervisor, which must take the filter's listener from the child.
   */
  notify: string[];
}

/**
 * Whether the filter hands `listen()` to a supervisor: with TCP ports open, a TCP socket that
 * could listen (`network-bind-tcp`, or `network-unix-sockets`, whose listen cannot be told apart
 * from a TCP one's) must be looked at first. Such a policy runs only supervised.
 * @param options What is restricted.
 * @returns `true` when `listen` is a user-notification row.
 */
export function supervisesListen(options: SeccompRuleOptions): boolean {
  const tcp = options.tcp ?? { connect: false, bind: false };
  return options.restrictNetwork && (tcp.connect || tcp.bind) &&
    (tcp.bind || !(options.restrictUnix ?? true));
}

/**
 * The filter's rows for a policy. Anything not listed is allowed.
 *
 * @param options What is restricted, and what Landlock already confines.
 * @returns The rows, in order.
 */
export function seccompRules(options: SeccompRuleOptions): SeccompRule[] {
  const rules: SeccompRule[] = [
    {
      syscall: "ioctl",
      when: [{ arg: 1, op: "eq", value: TIOCSTI }],
      errno: EPERM,
      why:
        "TIOCSTI pushes keystrokes into the terminal's input: commands typed into the user's shell",
    },
    {
      syscall: "ioctl",
      when: [{ arg: 1, op: "eq", value: TIOCLINUX }],
      errno: EPERM,
      why: "TIOCLINUX can paste the console selection into its input, like TIOCSTI",
    },
  ];
  const deny = (syscall: string, why: string, when: ArgCondition[] = [], errno = EPERM) =>
    rules.push({ syscall, when, errno, why });
  // The kernel keyrings live outside the filesystem, where Landlock cannot see them.
  deny(
    "keyctl",
    "reads the user's and session's keyrings: Kerberos tickets, NFS, ecryptfs and fscrypt keys",
  );
  deny("add_key", "adds keys to keyrings shared with the user's other processes");
  deny("request_key", "asks the kernel (and its upcall helpers) for keys by description");
  // clone3 takes its flags in a struct seccomp cannot read; CLONE_INTO_CGROUP with a descriptor
  // of another cgroup (O_PATH is not checked by Landlock) would put a child out of the kill
  // cgroup's reach. ENOSYS: libc falls back to clone, whose flags hold no cgroup.
  deny(
    "clone3",
    "CLONE_INTO_CGROUP starts a child in another cgroup, out of reach of the timeout's kill",
    [],
    ENOSYS,
  );
  // System V IPC has no path for Landlock to check: shared memory, queues and semaphores of
  // processes outside are reachable by key or id, and what the command makes outlives it.
  for (
    const [syscall, what] of [
      ["shmget", "finds or makes a shared-memory segment by key"],
      ["shmat", "attaches another process's shared memory by id, to read or overwrite it"],
      ["shmctl", "removes or changes others' segments"],
      ["msgget", "finds or makes a message queue by key"],
      ["msgsnd", "sends into another process's message queue"],
      ["msgrcv", "takes messages out of another process's queue"],
      ["msgctl", "removes or changes others' queues"],
      ["semget", "finds or makes a semaphore set by key"],
      ["semop", "operates another process's semaphores"],
      ["semtimedop", "operates another process's semaphores"],
      ["semctl", "removes or changes others' semaphore sets"],
    ] as const
  ) deny(syscall, `System V IPC, out of Landlock's sight: ${what}`);
  if (options.rootSetIdBits) {
    // As root the command owns most files, so Landlock (paths) and capabilities (ownership)
    // do not stop a chmod of root's own files; a set-user-ID root program made that way runs
    // as root for the next local user.
    const setId = (arg: number): ArgCondition => ({
      arg,
      op: "ne",
      value: 0,
      mask: S_ISUID_ISGID,
    });
    const why = "as root, sets the set-user-ID or set-group-ID bit: a root program for anyone";
    deny("chmod", why, [setId(1)]);
    deny("fchmod", why, [setId(1)]);
    deny("fchmodat", why, [setId(2)]);
    deny("fchmodat2", why, [setId(2)]);
    const created = "as root, creates a file with the set-user-ID or set-group-ID bit";
    deny("creat", created, [setId(1)]);
    deny("mknod", created, [setId(1)]);
    deny("mknodat", created, [setId(2)]);
    for (const bit of [O_CREAT, O_TMPFILE_BIT]) {
      const creating = (arg: number): ArgCondition => ({ arg, op: "ne", value: 0, mask: bit });
      deny("open", created, [creating(1), setId(2)]);
      deny("openat", created, [creating(2), setId(3)]);
    }
    deny(
      "openat2",
      "as root, its mode is in a struct seccomp cannot read; ENOSYS: libc falls back to openat",
      [],
      ENOSYS,
    );
  }
  // Other processes. A Landlock domain already refuses ptrace-class access to every process
  // outside it, and allows it inside (strace, gdb, and LeakSanitizer, which ptraces its own
  // threads, keep working). seccomp cannot tell inside from outside by pid, so these rows are
  // there only when no Landlock domain is (no Landlock, or full write with the network allowed
  // or on ABI < 4), and then refuse the call outright. pidfd_open is never refused: it only names
  // a process; what can be done with a pidfd is checked by the calls below.
  if (!options.ptraceScoped) {
    deny("ptrace", "without a Landlock domain, ptrace attaches to any process of the same uid");
    deny(
      "process_vm_readv",
      "without a Landlock domain, reads the memory of any process of the same uid",
    );
    deny(
      "process_vm_writev",
      "without a Landlock domain, writes the memory of any process of the same uid",
    );
    deny(
      "pidfd_getfd",
      "without a Landlock domain, copies any descriptor (a file or socket opened outside) " +
        "out of any process of the same uid",
    );
  }
  // The limits and scheduling of other processes. No Landlock check covers these calls, and
  // the kernel allows them on any process of the same uid: RLIMIT_CPU 1 kills one at once,
  // RLIMIT_NOFILE 1 or SCHED_IDLE cripples a supervisor. seccomp cannot tell inside from
  // outside by pid, so only the caller itself (pid 0: setrlimit, ulimit, nice) may be changed.
  const other = (arg: number): ArgCondition => ({ arg, op: "ne", value: 0 });
  deny(
    "prlimit64",
    "sets the resource limits of another process of the same uid (RLIMIT_CPU 1 kills it)",
    [other(0), { arg: 2, op: "nonzero64" }],
  );
  for (
    const [syscall, what] of [
      ["sched_setaffinity", "pins another process of the same uid to one CPU"],
      ["sched_setscheduler", "sets another process's policy (SCHED_IDLE starves it)"],
      ["sched_setparam", "sets another process's scheduling priority"],
      ["sched_setattr", "sets another process's scheduling (SCHED_IDLE starves it)"],
    ] as const
  ) deny(syscall, what, [other(0)]);
  deny("setpriority", "lowers the priority of another process of the same uid", [other(1)]);
  deny("setpriority", "PRIO_USER: lowers the priority of every process of the uid", [
    { arg: 0, op: "eq", value: PRIO_USER },
  ]);
  deny("ioprio_set", "lowers the I/O priority of another process of the same uid", [other(1)]);
  deny("ioprio_set", "IOPRIO_WHO_USER: lowers the I/O priority of every process of the uid", [
    { arg: 0, op: "eq", value: IOPRIO_WHO_USER },
  ]);
  // Signals. LANDLOCK_SCOPE_SIGNAL (ABI 6) keeps kill, pidfd_send_signal and SIGIO inside the
  // sandbox. Without it only the uid check applies, and seccomp can refuse only what it can
  // tell apart without knowing pids: kill(-1), and pidfd_send_signal. kill(pid) to one process
  // of the same uid outside stays possible there: the README says so, and --run-as narrows it.
  if (!options.signalsScoped) {
    deny(
      "kill",
      "without Landlock's signal scope, kill(-1) signals every process the command may: " +
        "as root, the whole host",
      [{ arg: 0, op: "eq", value: -1 }],
    );
    deny(
      "pidfd_send_signal",
      "without Landlock's signal scope, signals a process outside through a pidfd (callers " +
        "such as Go fall back to kill)",
    );
  }
  const restrictUnix = options.restrictUnix ?? true;
  // The type argument carries SOCK_NONBLOCK and SOCK_CLOEXEC above the type itself.
  const notStreamOrSeqpacket: ArgCondition[] = [
    { arg: 1, op: "ne", value: SOCK_STREAM, mask: SOCK_TYPE_MASK },
    { arg: 1, op: "ne", value: SOCK_SEQPACKET, mask: SOCK_TYPE_MASK },
  ];
  const unixPairs = () => {
    deny("socketpair", "only AF_UNIX pairs exist; refuse the rest outright", [
      { arg: 0, op: "ne", value: AF_UNIX },
    ]);
    if (restrictUnix) {
      deny(
        "socketpair",
        "a datagram pair still sends to any named address given to sendmsg; stream pairs cannot",
        notStreamOrSeqpacket,
      );
    }
  };
  if (!options.restrictNetwork) {
    if (!restrictUnix) return rules;
    // The network, but not the machine's daemons: connect cannot be told apart by family, so
    // no AF_UNIX socket may exist (pairs excepted), and io_uring could make one.
    deny(
      "socket",
      "an AF_UNIX socket connects to any daemon's socket (docker, D-Bus, agents): not the network",
      [{ arg: 0, op: "eq", value: AF_UNIX }],
    );
    unixPairs();
    denyIoUring(deny);
    return rules;
  }
  const tcp = options.tcp ?? { connect: false, bind: false };
  const tcpMode = tcp.connect || tcp.bind;
  if (!tcpMode) {
    deny("socket", "a socket of any family but AF_UNIX reaches a network (IP, netlink, packet)", [
      { arg: 0, op: "ne", value: AF_UNIX },
    ]);
    if (restrictUnix) {
      deny(
        "socket",
        "an AF_UNIX datagram socket can send to a path or abstract name outside (journald, /dev/log)",
        notStreamOrSeqpacket,
      );
    }
  } else {
    const families = [
      { arg: 0, op: "ne", value: AF_INET },
      { arg: 0, op: "ne", value: AF_INET6 },
      ...(restrictUnix ? [] : [{ arg: 0, op: "ne", value: AF_UNIX }]),
    ] as ArgCondition[];
    deny(
      "socket",
      "with TCP ports open, only TCP sockets may exist: an AF_UNIX one could connect to any " +
        "socket path, other families reach the network",
      families,
    );
    const inet: ArgCondition[] = restrictUnix ? [] : [{ arg: 0, op: "ne", value: AF_UNIX }];
    deny("socket", "UDP and raw sockets are not covered by Landlock's TCP port rules", [
      ...inet,
      { arg: 1, op: "ne", value: SOCK_STREAM, mask: SOCK_TYPE_MASK },
    ]);
    deny("socket", "MPTCP and SCTP stream sockets bypass Landlock's TCP port rules", [
      ...inet,
      { arg: 2, op: "ne", value: 0 },
      { arg: 2, op: "ne", value: IPPROTO_TCP },
    ]);
  }
  unixPairs();
  // With UNIX sockets granted, connect and bind reach only AF_UNIX sockets or TCP ones whose
  // ports Landlock checks; otherwise connect and bind open nothing that is granted.
  if (!tcp.connect && restrictUnix) {
    deny("connect", "connect reaches a listener outside (TCP, or a UNIX socket path or name)");
  }
  if (!tcp.bind && restrictUnix) {
    deny("bind", "bind offers a service to the outside, or a UNIX name to rendezvous on");
  }
  if (supervisesListen(options)) {
    // listen() on a TCP socket that was never bound binds a free port on every interface,
    // with no Landlock check. The supervisor looks at the very socket and listens for the
    // command only when it is a UNIX socket or bound (bind passed Landlock's port rule).
    rules.push({
      syscall: "listen",
      when: [],
      errno: EPERM,
      notify: true,
      why: "listen on an unbound TCP socket binds any free port unchecked: the supervisor " +
        "decides",
    });
  } else if (!tcp.bind && restrictUnix) {
    deny("listen", "listen accepts connections from outside");
  }
  if (!tcp.bind && restrictUnix) {
    deny("accept", "accept takes connections on an inherited listening socket");
    deny("accept4", "accept4 is accept with flags");
  }
  if (restrictUnix) {
    deny("sendto", "sendto with a destination address sends a datagram anywhere", [
      { arg: 4, op: "nonzero64" },
    ]);
  }
  if (tcpMode) {
    // Flags are the fourth argument of sendto and sendmmsg, the third of sendmsg.
    const fastOpen = (arg: number): ArgCondition[] => [
      { arg, op: "ne", value: 0, mask: MSG_FASTOPEN },
    ];
    const why = "TCP Fast Open connects inside the send call, where Landlock's connect rule " +
      "is not consulted";
    deny("sendto", why, fastOpen(3));
    deny("sendmsg", why, fastOpen(2));
    deny("sendmmsg", why, fastOpen(3));
  }
  denyIoUring(deny);
  return rules;
}

function denyIoUring(deny: (syscall: string, why: string) => void): void {
  deny(
    "io_uring_setup",
    "io_uring opens sockets and connects (IORING_OP_SOCKET/CONNECT) without these syscalls",
  );
  deny("io_uring_enter", "io_uring submits work that seccomp never sees");
  deny("io_uring_register", "io_uring registers files and buffers for that work");
}

/**
 * Plans the filter: its rows and the compiled program.
 *
 * @example
 * ```ts
 * import { planSeccomp } from "./seccomp.ts";
 * import assert from "node:assert/strict";
 *
 * const plan = planSeccomp({
 *   arch: "x86_64",
 *   restrictNetwork: true,
 *   ptraceScoped: true,
 *   signalsScoped: true,
 * });
 * assert.ok(plan.rules.every((rule) => rule.syscall !== "ptrace"));
 * assert.ok(plan.program.length > 10);
 * ```
 *
 * @param input The architecture and what to restrict.
 * @returns The plan.
 */
export function planSeccomp(input: SeccompInput): SeccompPlan {
  // aarch64 has only the *at forms (open, creat, chmod, mknod are x86_64's legacy entries).
  const rules = seccompRules(input).filter((rule) =>
    SYSCALL_NUMBERS[input.arch][rule.syscall] !== undefined || !LEGACY.has(rule.syscall)
  );
  const refused = [
    `any architecture but ${input.arch} (the 32-bit int 0x80 entry included): process killed`,
  ];
  if (input.arch === "x86_64") refused.push("x32 syscall numbers (bit 30 set): process killed");
  return {
    arch: input.arch,
    rules,
    refused,
    program: compileSeccomp(input.arch, rules),
    notify: [...new Set(rules.filter((rule) => rule.notify).map((rule) => rule.syscall))],
  };
}

type Label = { label: string };
type Target = number | Label;
interface PendingInstruction {
  code: number;
  jt: Target;
  jf: Target;
  k: number;
}

/**
 * Compiles filter rows to a classic BPF program. The architecture check comes first: any other
 * `AUDIT_ARCH`, and on x86_64 any number with the x32 bit, kills the process; then each syscall
 * that has rows is tested once, its rows in order (the first whose conditions all hold returns
 * its errno); anything else is allowed.
 *
 * @param arch The architecture whose numbers and `AUDIT_ARCH` are used.
 * @param rules The rows.
 * @returns The program, at most 4096 instructions.
 */
export function compileSeccomp(arch: SeccompArch, rules: readonly SeccompRule[]): BpfInstruction[] {
  const numbers = SYSCALL_NUMBERS[arch];
  const out: PendingInstruction[] = [];
  const labels = new Map<string, number>();
  const emit = (code: number, k: number, jt: Target = 0, jf: Target = 0) =>
    out.push({ code, jt, jf, k });
  const mark = (label: string) => labels.set(label, out.length);
  const to = (label: string): Label => ({ label });

  emit(BPF_LD_W_ABS, SECCOMP_DATA_ARCH);
  emit(BPF_JMP_JEQ_K, AUDIT_ARCH[arch], 1, 0);
  emit(BPF_RET_K, SECCOMP_RET_KILL_PROCESS);
  emit(BPF_LD_W_ABS, SECCOMP_DATA_NR);
  if (arch === "x86_64") {
    emit(BPF_JMP_JSET_K, X32_SYSCALL_BIT, 0, 1);
    emit(BPF_RET_K, SECCOMP_RET_KILL_PROCESS);
  }

  const bySyscall = new Map<string, SeccompRule[]>();
  for (const rule of rules) {
    if (numbers[rule.syscall] === undefined) {
      throw new Error(`No ${arch} syscall number for ${rule.syscall}`);
    }
    bySyscall.set(rule.syscall, [...(bySyscall.get(rule.syscall) ?? []), rule]);
  }

  let group = 0;
  for (const [syscall, rows] of bySyscall) {
    const next = `group${group++}`;
    // Only this test jumps to the next group, so the accumulator still holds the number there.
    emit(BPF_JMP_JEQ_K, numbers[syscall], 0, to(next));
    rows.forEach((row, index) => {
      const fail = `${next}.row${index}`;
      for (const condition of row.when) {
        if (condition.op === "nonzero64") {
          const nonzero = `${fail}.nonzero${condition.arg}`;
          emit(BPF_LD_W_ABS, seccompDataArgLow(condition.arg));
          emit(BPF_JMP_JEQ_K, 0, 0, to(nonzero));
          emit(BPF_LD_W_ABS, seccompDataArgHigh(condition.arg));
          emit(BPF_JMP_JEQ_K, 0, to(fail), 0);
          mark(nonzero);
          continue;
        }
        emit(BPF_LD_W_ABS, seccompDataArgLow(condition.arg));
        if (condition.mask !== undefined) emit(BPF_ALU_AND_K, condition.mask >>> 0);
        if (condition.op === "eq") emit(BPF_JMP_JEQ_K, condition.value >>> 0, 0, to(fail));
        else emit(BPF_JMP_JEQ_K, condition.value >>> 0, to(fail), 0);
      }
      emit(
        BPF_RET_K,
        row.notify ? SECCOMP_RET_USER_NOTIF : (SECCOMP_RET_ERRNO | (row.errno & 0xffff)) >>> 0,
      );
      mark(fail);
    });
    emit(BPF_RET_K, SECCOMP_RET_ALLOW);
    mark(next);
  }
  emit(BPF_RET_K, SECCOMP_RET_ALLOW);

  const program = out.map((instruction, index): BpfInstruction => {
    const resolve = (target: Target): number => {
      if (typeof target === "number") return target;
      const at = labels.get(target.label);
      if (at === undefined) throw new Error(`Unresolved BPF label ${target.label}`);
      const offset = at - index - 1;
      if (offset < 0 || offset > 255) {
        throw new Error(`BPF jump to ${target.label} out of range: ${offset}`);
      }
      return offset;
    };
    return {
      code: instruction.code,
      jt: resolve(instruction.jt),
      jf: resolve(instruction.jf),
      k: instruction.k,
    };
  });
  if (program.length > 4096) throw new Error(`BPF program too long: ${program.length}`);
  return program;
}
