// The red-team suite as a table: one row per escape, one test per row. The README's threat table
// is this table (tests/redteam/threat_table_test.ts checks it line for line), and each row's
// test lives in tests/redteam/<family>_test.ts, registered by threatTest(id).

/** One escape the suite tries. */
export interface Threat {
  /** A short key, used by `threatTest`. */
  id: string;
  /** The file `tests/redteam/<family>_test.ts` that tries it. */
  family:
    | "syscall_abi"
    | "network"
    | "terminal"
    | "files"
    | "reads"
    | "processes"
    | "privileges"
    | "supervisor";
  /** What the command tries. */
  threat: string;
  /** Each layer that stops it by itself, with what the command sees; each is tested alone. */
  stoppedBy: string;
  /** What the layers need from the kernel. */
  kernel: string;
  /** The test's name. */
  test: string;
}

const LANDLOCK_1 = "Landlock ABI 1 (5.13)";
const SECCOMP = "seccomp (3.5)";

/** Every escape, in the README's order. */
export const THREATS: readonly Threat[] = [
  {
    id: "int80",
    family: "syscall_abi",
    threat: "a syscall through the 32-bit `int 0x80` entry on x86_64, which x86_64 rows misread",
    stoppedBy: "seccomp architecture check: process killed (SIGSYS)",
    kernel: "seccomp, SECCOMP_RET_KILL_PROCESS (4.14)",
    test: "int 0x80: a 32-bit syscall kills the command (SIGSYS)",
  },
  {
    id: "x32-bpf",
    family: "syscall_abi",
    threat: "an x32 syscall number (bit 30 set) on x86_64",
    stoppedBy: "seccomp x32 check: process killed",
    kernel: "none (the compiled filter, in the BPF interpreter)",
    test: "x32 syscall numbers: the filter kills them (BPF interpreter)",
  },
  {
    id: "x32-kernel",
    family: "syscall_abi",
    threat: "an x32 syscall number on a kernel that has x32 enabled",
    stoppedBy: "seccomp x32 check: process killed (SIGSYS)",
    kernel: "seccomp (4.14); the kernel built with x32",
    test: "x32 syscall numbers kill the command (kernel)",
  },
  {
    id: "tcp-connect",
    family: "network",
    threat: "a TCP connection to a listener",
    stoppedBy: "seccomp: `socket` EPERM; Landlock: `connect` EACCES",
    kernel: `${SECCOMP}; Landlock ABI 4 (6.7)`,
    test: "TCP: connecting to a loopback listener is refused",
  },
  {
    id: "tcp-bind",
    family: "network",
    threat: "a TCP server: bind and listen",
    stoppedBy: "seccomp: `socket` EPERM; Landlock: `bind` EACCES",
    kernel: `${SECCOMP}; Landlock ABI 4 (6.7)`,
    test: "TCP: binding a loopback port is refused",
  },
  {
    id: "udp",
    family: "network",
    threat: "a UDP datagram to a listener",
    stoppedBy: "seccomp: `socket` EPERM",
    kernel: SECCOMP,
    test: "UDP: a datagram to a loopback listener is refused",
  },
  {
    id: "netlink",
    family: "network",
    threat: "a netlink socket (routes, firewall, audit)",
    stoppedBy: "seccomp: `socket` EPERM",
    kernel: SECCOMP,
    test: "netlink: creating an AF_NETLINK socket is refused",
  },
  {
    id: "packet",
    family: "network",
    threat: "a raw packet socket as root: sniff or forge any traffic",
    stoppedBy: "seccomp: `socket` EPERM; capability drop (CAP_NET_RAW): `socket` EPERM",
    kernel: SECCOMP,
    test: "packet: creating an AF_PACKET socket as root is refused",
  },
  {
    id: "packet-full-network",
    family: "network",
    threat: "with `network-full-access`, as root: read other users' traffic, loopback included, " +
      "through a packet socket",
    stoppedBy: "capability drop: `socket` EPERM (`network-full-access` keeps no capability)",
    kernel: "any",
    test: "packet: network-full-access as root still creates no AF_PACKET socket",
  },
  {
    id: "proxy-other-user",
    family: "network",
    threat: "another user of the machine borrows a run's proxy (a port on 127.0.0.1) to reach " +
      "what the run was granted, in the run's name",
    stoppedBy: "the proxy: a client whose socket is not the command's uid is closed unanswered",
    kernel: "any",
    test: "network-domain: another user cannot use the run's proxy",
  },
  {
    id: "unix-dgram",
    family: "network",
    threat: "an AF_UNIX datagram to a named socket outside (`/dev/log`, journald)",
    stoppedBy: "seccomp: datagram `socket` EPERM",
    kernel: SECCOMP,
    test: "AF_UNIX: a datagram to a pathname socket outside is refused",
  },
  {
    id: "unix-dgram-pair",
    family: "network",
    threat: "an AF_UNIX datagram socketpair sending to a named socket outside",
    stoppedBy: "seccomp: datagram `socketpair` EPERM",
    kernel: SECCOMP,
    test: "AF_UNIX: a datagram socketpair cannot send to a pathname socket outside",
  },
  {
    id: "unix-stream",
    family: "network",
    threat: "an AF_UNIX connection to a named listener outside (a daemon's socket)",
    stoppedBy: "seccomp: `connect` EPERM",
    kernel: SECCOMP,
    test: "AF_UNIX: connecting to a pathname listener outside is refused",
  },
  {
    id: "unix-abstract",
    family: "network",
    threat: "an AF_UNIX connection to an abstract-namespace listener outside",
    stoppedBy: "seccomp: `connect` EPERM; Landlock abstract-socket scope: `connect` EPERM",
    kernel: `${SECCOMP}; Landlock ABI 6 (6.12)`,
    test: "AF_UNIX: connecting to an abstract listener outside is refused",
  },
  {
    id: "io-uring",
    family: "network",
    threat: "io_uring: a TCP socket and connection without `socket` or `connect`",
    stoppedBy: "seccomp: `io_uring_setup` EPERM; Landlock: IORING_OP_CONNECT EACCES",
    kernel: `${SECCOMP}; Landlock ABI 4 (6.7)`,
    test: "io_uring: a socket and a connection through the ring are refused",
  },
  {
    id: "listen-unbound",
    family: "network",
    threat: "with `network-bind-tcp`, `listen()` on a socket never bound: any free port, every " +
      "interface",
    stoppedBy: "the supervisor (seccomp user notification): `listen` EACCES; it listens itself " +
      "only on a socket bound to a granted port",
    kernel: "seccomp user notification (5.9); Landlock ABI 4 (6.7)",
    test: "listen() without bind() is refused with network-bind-tcp",
  },
  {
    id: "unix-full-network",
    family: "network",
    threat: "with `network-full-access`, connect to a daemon's UNIX socket (docker, D-Bus)",
    stoppedBy: "seccomp: AF_UNIX `socket` EPERM; Landlock abstract-socket scope: `connect` EPERM",
    kernel: `${SECCOMP}; Landlock ABI 6 (6.12)`,
    test: "AF_UNIX: network-full-access does not reach a daemon's socket",
  },
  {
    id: "tiocsti",
    family: "terminal",
    threat: "TIOCSTI: type a command into the user's terminal",
    stoppedBy: "seccomp: `ioctl` EPERM",
    kernel: SECCOMP,
    test: "TIOCSTI: typing into the controlling terminal is refused",
  },
  {
    id: "tioclinux",
    family: "terminal",
    threat: "TIOCLINUX: paste the console selection into its input",
    stoppedBy: "seccomp: `ioctl` EPERM",
    kernel: "none (the compiled filter, in the BPF interpreter: it needs a virtual console)",
    test: "TIOCLINUX: the filter refuses it (BPF interpreter)",
  },
  {
    id: "other-terminal",
    family: "terminal",
    threat: "read what is typed into another session's terminal (`/dev/pts/N`)",
    stoppedBy: "Landlock: `open` EACCES (full read is `/` without `/dev`; devices by name)",
    kernel: LANDLOCK_1,
    test: "other terminals: another session's /dev/pts/N cannot be opened",
  },
  {
    id: "tty-takeover",
    family: "terminal",
    threat: "from a supervised command, take the caller's terminal (`/dev/tty`, `tcsetpgrp`) " +
      "and read what is typed",
    stoppedBy: "a session of its own: `open` ENXIO (no controlling terminal); Landlock: no " +
      "`/dev/tty` rule",
    kernel: "any",
    test: "/dev/tty: a supervised command has no controlling terminal",
  },
  {
    id: "writable-pts",
    family: "terminal",
    threat: "grant `/dev/pts` (or `/dev`) writable, then read and type into another session's " +
      "terminal",
    stoppedBy: "the planner: a writable root in `/dev` (but `/dev/shm`, `/dev/mqueue`) is " +
      "refused (exit 2)",
    kernel: "any",
    test: "/dev/pts as a writable root is refused",
  },
  {
    id: "terminal-settings",
    family: "terminal",
    threat: "from a supervised command, leave the caller's terminal without echo, so that the " +
      "next password typed shows",
    stoppedBy: "the supervisor: the terminal's settings are put back when the command ends",
    kernel: "any",
    test: "terminal settings a supervised command changed are put back",
  },
  {
    id: "write-outside",
    family: "files",
    threat: "create a file outside the writable roots",
    stoppedBy: "Landlock: `open` EACCES",
    kernel: LANDLOCK_1,
    test: "files: creating a file outside the writable roots is refused",
  },
  {
    id: "truncate-outside",
    family: "files",
    threat: "truncate a file outside the writable roots",
    stoppedBy: "Landlock: `truncate` EACCES",
    kernel: "Landlock ABI 3 (6.2)",
    test: "files: truncating a file outside the writable roots is refused",
  },
  {
    id: "proc-fd",
    family: "files",
    threat: "reopen a read-only descriptor for writing through `/proc/self/fd/N`",
    stoppedBy: "Landlock: `open` EACCES",
    kernel: LANDLOCK_1,
    test: "/proc/self/fd/N: reopening a read-only file for writing is refused",
  },
  {
    id: "proc-self-root",
    family: "files",
    threat: "write outside through `/proc/self/root/...`",
    stoppedBy: "Landlock: `open` EACCES",
    kernel: LANDLOCK_1,
    test: "/proc/self/root: writing outside through it is refused",
  },
  {
    id: "proc-pid-root",
    family: "files",
    threat: "write through `/proc/PID/root/...` of a process outside",
    stoppedBy: "Landlock: `open` EACCES; capability drop (a root target): `open` EACCES",
    kernel: LANDLOCK_1,
    test: "/proc/PID/root of a process outside: writing through it is refused",
  },
  {
    id: "proc-self-cwd",
    family: "files",
    threat: "write outside through `/proc/self/cwd/...` (a working folder outside the roots)",
    stoppedBy: "Landlock: `open` EACCES",
    kernel: LANDLOCK_1,
    test: "/proc/self/cwd: writing outside through it is refused",
  },
  {
    id: "proc-pid-cwd",
    family: "files",
    threat: "write through `/proc/PID/cwd/...` of a process outside",
    stoppedBy: "Landlock: `open` EACCES; capability drop (a root target): `open` EACCES",
    kernel: LANDLOCK_1,
    test: "/proc/PID/cwd of a process outside: writing through it is refused",
  },
  {
    id: "device-node",
    family: "files",
    threat: "a device node in a writable root, as root (a raw disk)",
    stoppedBy: "Landlock: `mknod` EACCES; capability drop (CAP_MKNOD): `mknod` EPERM",
    kernel: LANDLOCK_1,
    test: "device nodes: mknod in a writable root is refused",
  },
  {
    id: "inherited-fd",
    family: "files",
    threat: "write through a descriptor opened outside and inherited (fd 3)",
    stoppedBy: "close-on-exec of every descriptor above 2 before `execve`: `write` EBADF",
    kernel: "close_range (5.11)",
    test: "inherited descriptors: fd 3 from outside is closed at execve",
  },
  {
    id: "planned-inode",
    family: "files",
    threat: "swap a writable root for a symlink between planning and applying",
    stoppedBy: "the child: `open` of a path that is not the planned file (device, inode) is " +
      "refused, nothing runs (125)",
    kernel: "any",
    test: "roots: a root replaced after planning is refused",
  },
  {
    id: "hidden-secret",
    family: "reads",
    threat: "read a credential location under full read: directly, through `/proc/self/root`, " +
      "a symlink, a new hard link, `..`",
    stoppedBy: "Landlock: `open` EACCES (no rule reaches it; its siblings have theirs), " +
      "`link` EXDEV",
    kernel: "Landlock ABI 2 (5.19)",
    test: "hidden locations: a credential file is unreadable by any path",
  },
  {
    id: "program-prefix",
    family: "reads",
    threat: "with restricted reads, widen them to `/` by naming the program through " +
      "`/proc/self/root` or a symlink to `/`",
    stoppedBy: "the planner: only the program's real installation is readable, never `/`, a " +
      "home or a shared folder",
    kernel: LANDLOCK_1,
    test: "restricted reads: a program named through /proc/self/root or a link to / widens nothing",
  },
  {
    id: "other-homes",
    family: "reads",
    threat: "as root, read a home folder that `/etc/passwd` does not list (LDAP, SSSD)",
    stoppedBy: "Landlock: `open` EACCES (every folder in `/home` is hidden but the caller's own)",
    kernel: "Landlock ABI 2 (5.19)",
    test: "as root, a home folder /etc/passwd does not list is unreadable",
  },
  {
    id: "shadow-backups",
    family: "reads",
    threat: "as root, read the password hashes in the shadow tools' backups (`/etc/shadow-`)",
    stoppedBy: "Landlock: `open` EACCES (hidden with `/etc/shadow`)",
    kernel: "Landlock ABI 2 (5.19)",
    test: "as root, /etc/shadow- is unreadable",
  },
  {
    id: "ptrace",
    family: "processes",
    threat: "ptrace a process outside and read its memory",
    stoppedBy: "Landlock: EPERM; seccomp where there is no Landlock domain: EPERM; " +
      "capability drop (a root target): EPERM",
    kernel: `${LANDLOCK_1}; ${SECCOMP}`,
    test: "ptrace: attaching to a process outside is refused",
  },
  {
    id: "vm-read",
    family: "processes",
    threat: "read a process outside with `process_vm_readv`",
    stoppedBy: "Landlock: EPERM; seccomp where there is no Landlock domain: EPERM; " +
      "capability drop (a root target): EPERM",
    kernel: `${LANDLOCK_1}; ${SECCOMP}`,
    test: "process_vm_readv: reading a process outside is refused",
  },
  {
    id: "vm-write",
    family: "processes",
    threat: "write a process outside with `process_vm_writev`",
    stoppedBy: "Landlock: EPERM; seccomp where there is no Landlock domain: EPERM; " +
      "capability drop (a root target): EPERM",
    kernel: `${LANDLOCK_1}; ${SECCOMP}`,
    test: "process_vm_writev: writing a process outside is refused",
  },
  {
    id: "pidfd-getfd",
    family: "processes",
    threat: "copy a descriptor out of a process outside (`pidfd_getfd`) and write through it",
    stoppedBy: "Landlock: EPERM; seccomp where there is no Landlock domain: EPERM; " +
      "capability drop (a root target): EPERM",
    kernel: `${LANDLOCK_1}; ${SECCOMP}`,
    test: "pidfd_getfd: borrowing a descriptor from a process outside is refused",
  },
  {
    id: "pidfd-signal",
    family: "processes",
    threat: "signal a process outside with `pidfd_open` and `pidfd_send_signal`",
    stoppedBy: "Landlock signal scope: EPERM; seccomp where signals are not scoped: EPERM",
    kernel: `Landlock ABI 6 (6.12); ${SECCOMP}`,
    test: "pidfd_send_signal: signalling a process outside is refused",
  },
  {
    id: "kill",
    family: "processes",
    threat: "`kill` a process outside",
    stoppedBy: "Landlock signal scope: EPERM; --run-as another user: EPERM",
    kernel: "Landlock ABI 6 (6.12)",
    test: "kill: signalling a process outside is refused",
  },
  {
    id: "kill-all",
    family: "processes",
    threat: "`kill(-1)`: every process the command may signal (as root, the host)",
    stoppedBy: "Landlock signal scope: outside processes skipped; seccomp where signals are " +
      "not scoped: EPERM",
    kernel: `Landlock ABI 6 (6.12); ${SECCOMP}`,
    test: "kill(-1): no process outside is signalled (private PID namespace)",
  },
  {
    id: "sysv-ipc",
    family: "processes",
    threat: "overwrite a System V shared-memory segment of a process outside; leave segments " +
      "behind",
    stoppedBy: "seccomp: `shmat`, `shmget` EPERM (and the rest of System V IPC)",
    kernel: SECCOMP,
    test: "System V IPC: a segment outside cannot be attached, none can be made",
  },
  {
    id: "limits-of-others",
    family: "processes",
    threat: "change a process outside: its resource limits (`prlimit`: RLIMIT_CPU 1 kills it, " +
      "the supervisor included), its CPUs or priority (`taskset`, `renice`)",
    stoppedBy: "seccomp: `prlimit64`, `sched_setaffinity`, `setpriority` on another pid EPERM",
    kernel: SECCOMP,
    test: "other processes' limits and scheduling cannot be changed",
  },
  {
    id: "capabilities",
    family: "privileges",
    threat: "use root's capabilities (modules, reboot, mount, raw I/O, any file's owner)",
    stoppedBy: "capability drop: CapEff, CapPrm, CapInh, CapAmb and CapBnd all 0",
    kernel: "ambient capabilities (4.3)",
    test: "capabilities: as root the command holds none",
  },
  {
    id: "chown",
    family: "privileges",
    threat: "`chown` a file outside the writable roots, as root",
    stoppedBy: "capability drop (CAP_CHOWN): EPERM; --run-as: EPERM",
    kernel: "any",
    test: "chown: giving away a file outside is refused",
  },
  {
    id: "chmod",
    family: "privileges",
    threat: "`chmod u+s` or `666` a file root owns outside the writable roots",
    stoppedBy: "--run-as: EPERM (root owns the file: Landlock and capabilities do not apply)",
    kernel: "any",
    test: "chmod: changing the mode of root's file outside is refused with --run-as",
  },
  {
    id: "utime",
    family: "privileges",
    threat: "set the times of a file root owns outside the writable roots",
    stoppedBy: "--run-as: EPERM (root owns the file)",
    kernel: "any",
    test: "utime: setting the times of root's file outside is refused with --run-as",
  },
  {
    id: "user-xattr",
    family: "privileges",
    threat: "set a `user.` extended attribute on a file root owns outside the writable roots",
    stoppedBy: "--run-as: EACCES (root owns the file)",
    kernel: "any",
    test: "user xattr: setting one on root's file outside is refused with --run-as",
  },
  {
    id: "trusted-xattr",
    family: "privileges",
    threat: "set a `trusted.` extended attribute, as root",
    stoppedBy: "capability drop (CAP_SYS_ADMIN): EPERM",
    kernel: "any",
    test: "trusted xattr: setting one as root is refused",
  },
  {
    id: "keyring",
    family: "privileges",
    threat: "use the kernel keyrings, which hold secrets outside the filesystem",
    stoppedBy: "seccomp: `add_key`, `keyctl`, `request_key` EPERM",
    kernel: SECCOMP,
    test: "keyring: adding a key is refused",
  },
  {
    id: "setuid",
    family: "privileges",
    threat: "run a setuid-root program to become root again (with --run-as)",
    stoppedBy: "no_new_privs: the effective uid stays",
    kernel: "no_new_privs (3.5)",
    test: "setuid programs: a setuid-root copy of id does not raise the command's rights",
  },
  {
    id: "setid-bits",
    family: "privileges",
    threat: "as root without --run-as, `chmod u+s` a file root owns outside the writable roots",
    stoppedBy: "seccomp: `chmod` EPERM (the set-user-ID and set-group-ID bits only); " +
      "--run-as: EPERM",
    kernel: SECCOMP,
    test: "set-user-ID bits: as root the command cannot set them",
  },
  {
    id: "root-full-write",
    family: "privileges",
    threat: "as root with full write and no network, have the kernel run a helper with the " +
      "network (`/proc/sys/kernel/core_pattern`)",
    stoppedBy: "the planner: refused (exit 2) unless --run-as or the network is granted",
    kernel: "any",
    test: "full write as root without the network is refused",
  },
  {
    id: "run-as-root",
    family: "privileges",
    threat: "as root, `--run-as root` (or `0`) to pass the rule above and write `core_pattern`",
    stoppedBy: "the planner: `--run-as` must name another uid than 0 (exit 2)",
    kernel: "any",
    test: "--run-as root is refused",
  },
  {
    id: "kernel-interface",
    family: "privileges",
    threat: "grant a writable folder in `/proc` or `/sys` (as root, `/proc/sys/kernel/` holds " +
      "`core_pattern`)",
    stoppedBy: "the planner: a writable root in `/proc` or `/sys` is refused (exit 2)",
    kernel: "any",
    test: "writable roots in /proc and /sys are refused",
  },
  {
    id: "clone3-cgroup",
    family: "supervisor",
    threat: "start a child in another cgroup (`clone3` with CLONE_INTO_CGROUP), out of the " +
      "timeout's kill",
    stoppedBy: "seccomp: `clone3` ENOSYS (libc falls back to `clone`)",
    kernel: SECCOMP,
    test: "clone3: a child cannot be started in another cgroup",
  },
  {
    id: "supervisor-fds",
    family: "supervisor",
    threat: 'forge, read or delete the supervisor\'s report and plan (exit 125 "nothing ran", ' +
      "or a crash)",
    stoppedBy: "no file: a pipe and a sealed memfd reached through `/proc/SUPERVISOR/fd`; " +
      "Landlock: `open` EACCES",
    kernel: LANDLOCK_1,
    test: "supervisor: its descriptors are out of the command's reach",
  },
  {
    id: "self-rewrite",
    family: "supervisor",
    threat: "rewrite what the next run loads before its sandbox: Deno, DENO_DIR, this tool, " +
      "the config",
    stoppedBy: "the planner: a policy that can write one of them is refused (exit 2)",
    kernel: "any",
    test: "self-protection: a policy that could write the next run's code is refused",
  },
  {
    id: "launcher-path",
    family: "supervisor",
    threat: "plant a program that the installed command runs before its sandbox, in a folder " +
      "first on `PATH` (npm puts `./node_modules/.bin` there)",
    stoppedBy: "the launcher: it runs nothing found through `PATH`",
    kernel: "any",
    test: "the launcher runs nothing from PATH before the sandbox",
  },
  {
    id: "config-dangling-link",
    family: "supervisor",
    threat: "create the default config file through a symlink on the way to it whose target " +
      "does not exist yet",
    stoppedBy: "the planner: where a dangling symlink leads counts as on the way (exit 2)",
    kernel: "any",
    test: "a dangling symlink to the config file's place is protected too",
  },
  {
    id: "supervisor-killed",
    family: "supervisor",
    threat: "outlive the run: the supervisor is killed (SIGKILL), or the library's program " +
      "exits, while a `setsid` descendant runs with no timeout left",
    stoppedBy: "the next run kills every cgroup whose supervisor is gone; the library kills " +
      "its runs when its program exits",
    kernel: "cgroup v2 with `cgroup.kill` (5.14)",
    test: "a run whose supervisor died is killed by the next run",
  },
  {
    id: "endless-stdin",
    family: "supervisor",
    threat: "keep `--timeout` from ending the run, and fill the supervisor's memory, with a " +
      "stdin that never ends (`--json --stdin`)",
    stoppedBy: "the supervisor: stdin is passed on as the command reads it, and dropped when " +
      "the command ends",
    kernel: "any",
    test: "--json --stdin: an endless stdin does not outlast the timeout",
  },
];
