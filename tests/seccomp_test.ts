// The seccomp filter, judged by what the compiled program decides for each syscall (run in the
// BPF interpreter of ./_bpf.ts), on both architectures; and the encoding handed to the kernel.

import assert from "node:assert/strict";
import { BpfError, type Instruction, runBpf, seccompData, validate } from "./_bpf.ts";
import {
  AF_INET,
  AF_INET6,
  AF_NETLINK,
  AF_UNIX,
  AUDIT_ARCH,
  AUDIT_ARCH_AARCH64,
  AUDIT_ARCH_I386,
  AUDIT_ARCH_X86_64,
  BPF_LD_W_ABS,
  compileSeccomp,
  ENOSYS,
  EPERM,
  planSeccomp,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_USER_NOTIF,
  type SeccompArch,
  type SeccompRule,
  type SeccompRuleOptions,
  seccompRules,
  SOCK_DGRAM,
  SOCK_RAW,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SYSCALL_NUMBERS,
  TIOCLINUX,
  TIOCSTI,
  X32_SYSCALL_BIT,
} from "../policy/seccomp.ts";

const ARCHES: readonly SeccompArch[] = ["x86_64", "aarch64"];
const ALLOW = SECCOMP_RET_ALLOW;
const KILL = SECCOMP_RET_KILL_PROCESS;
const DENY = (SECCOMP_RET_ERRNO | EPERM) >>> 0;

// Not in the filter's table, so not in SYSCALL_NUMBERS; from arch/x86/entry/syscalls/syscall_64.tbl
// and include/uapi/asm-generic/unistd.h.
const UNLISTED: Record<SeccompArch, Record<string, number>> = {
  x86_64: { read: 0, write: 1, sendmsg: 46, recvmsg: 47 },
  aarch64: { read: 63, write: 64, sendmsg: 211, recvmsg: 212 },
};
// From include/uapi/linux/audit.h: the 32-bit ARM compat entry of an aarch64 kernel.
const AUDIT_ARCH_ARM = 0x40000028;
// From include/linux/socket.h and include/uapi/asm-generic/ioctls.h.
const AF_PACKET = 17;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const TCGETS = 0x5401;

/** A syscall as the filter of a policy on an architecture decides it. */
type Decide = (name: string, args?: readonly (bigint | number)[]) => number;

function filterFor(
  arch: SeccompArch,
  restrictNetwork: boolean,
  options: Omit<SeccompRuleOptions, "restrictNetwork"> = {},
): Decide {
  const { program } = planSeccomp({ arch, restrictNetwork, ...options });
  return (name, args = []) => {
    const nr = SYSCALL_NUMBERS[arch][name] ?? UNLISTED[arch][name];
    assert.notEqual(nr, undefined, `no ${arch} number for ${name} in the test`);
    return runBpf(program, { nr, arch: AUDIT_ARCH[arch], args });
  };
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function assertDecision(actual: number, expected: number, what: string): void {
  assert.equal(hex(actual), hex(expected), what);
}

Deno.test("planSeccomp() compiles a program the kernel accepts, starting with the arch load", async (t) => {
  for (const arch of ARCHES) {
    for (const restrictNetwork of [true, false]) {
      await t.step(`${arch}, restrictNetwork ${restrictNetwork}`, () => {
        const { program, arch: planned } = planSeccomp({ arch, restrictNetwork });
        assert.equal(planned, arch);
        validate(program);
        assert.ok(program.length <= 4096, `${program.length} instructions`);
        assert.deepEqual(program[0], { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: 4 });
      });
    }
  }
});

Deno.test("planSeccomp() kills the process for any other architecture", async (t) => {
  const foreign: Record<SeccompArch, [string, number][]> = {
    x86_64: [
      ["i386 (int 0x80)", AUDIT_ARCH_I386],
      ["aarch64", AUDIT_ARCH_AARCH64],
      ["zero", 0],
    ],
    aarch64: [
      ["x86_64", AUDIT_ARCH_X86_64],
      ["32-bit ARM compat", AUDIT_ARCH_ARM],
      ["i386", AUDIT_ARCH_I386],
    ],
  };
  for (const arch of ARCHES) {
    for (const [name, auditArch] of foreign[arch]) {
      await t.step(`${name} on a ${arch} filter`, () => {
        for (const restrictNetwork of [true, false]) {
          const { program } = planSeccomp({ arch, restrictNetwork });
          // Numbers that are harmless natively, and the numbers the filter tests.
          const numbers = [
            ...Object.values(UNLISTED[arch]),
            ...Object.values(SYSCALL_NUMBERS[arch]),
          ];
          for (const nr of numbers) {
            assertDecision(runBpf(program, { nr, arch: auditArch }), KILL, `nr ${nr}`);
          }
        }
      });
    }
  }
});

Deno.test("planSeccomp() kills x32 syscall numbers on x86_64", () => {
  for (const restrictNetwork of [true, false]) {
    const { program, refused } = planSeccomp({ arch: "x86_64", restrictNetwork });
    assert.ok(refused.some((line) => line.includes("x32")), refused.join("\n"));
    const numbers = [...Object.values(UNLISTED.x86_64), ...Object.values(SYSCALL_NUMBERS.x86_64)];
    for (const n of numbers) {
      const nr = X32_SYSCALL_BIT | n;
      assertDecision(runBpf(program, { nr, arch: AUDIT_ARCH_X86_64 }), KILL, `nr ${hex(nr)}`);
    }
  }
});

Deno.test("planSeccomp() describes what it refuses for each architecture", () => {
  const x86 = planSeccomp({ arch: "x86_64", restrictNetwork: true }).refused;
  const arm = planSeccomp({ arch: "aarch64", restrictNetwork: true }).refused;
  assert.equal(x86.length, 2);
  assert.match(x86[0], /x86_64/);
  assert.equal(arm.length, 1);
  assert.match(arm[0], /aarch64/);
});

Deno.test("planSeccomp() with the network restricted refuses connect, accept, bind, listen and io_uring", async (t) => {
  const names = [
    "connect",
    "accept",
    "accept4",
    "bind",
    "listen",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
  ];
  for (const arch of ARCHES) {
    await t.step(arch, () => {
      const decide = filterFor(arch, true);
      for (const name of names) {
        assertDecision(decide(name), DENY, `${name}()`);
        assertDecision(decide(name, [3, 0x1000, 16, 0, 0, 0]), DENY, `${name}(3, ...)`);
      }
    });
  }
});

Deno.test("planSeccomp() with the network restricted refuses sockets of every family but AF_UNIX", async (t) => {
  const families: [string, number | bigint][] = [
    ["AF_INET", AF_INET],
    ["AF_INET6", AF_INET6],
    ["AF_NETLINK", AF_NETLINK],
    ["AF_PACKET", AF_PACKET],
    ["AF_INET with high bits set", 0xffffffff_00000000n | BigInt(AF_INET)],
    ["AF_UNSPEC", 0],
  ];
  for (const arch of ARCHES) {
    for (const syscall of ["socket", "socketpair"]) {
      await t.step(`${syscall} on ${arch}`, () => {
        const decide = filterFor(arch, true);
        for (const [name, family] of families) {
          for (const type of [SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET]) {
            assertDecision(decide(syscall, [family, type, 0]), DENY, `${name}, type ${type}`);
          }
        }
      });
    }
  }
});

Deno.test("planSeccomp() with the network restricted allows AF_UNIX stream and seqpacket sockets only", async (t) => {
  const types: [string, number | bigint, number][] = [
    ["SOCK_STREAM", SOCK_STREAM, ALLOW],
    ["SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK", SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, ALLOW],
    ["SOCK_SEQPACKET", SOCK_SEQPACKET, ALLOW],
    ["SOCK_SEQPACKET|SOCK_CLOEXEC", SOCK_SEQPACKET | SOCK_CLOEXEC, ALLOW],
    ["SOCK_DGRAM", SOCK_DGRAM, DENY],
    ["SOCK_DGRAM|SOCK_CLOEXEC|SOCK_NONBLOCK", SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, DENY],
    ["SOCK_RAW", SOCK_RAW, DENY],
    // The kernel reads `int type`: the high half of the register is not part of it.
    ["SOCK_STREAM with high bits set", 0xffffffff_00000000n | BigInt(SOCK_STREAM), ALLOW],
    ["SOCK_DGRAM with high bits set", 0xffffffff_00000000n | BigInt(SOCK_DGRAM), DENY],
  ];
  for (const arch of ARCHES) {
    for (const syscall of ["socket", "socketpair"]) {
      await t.step(`${syscall} on ${arch}`, () => {
        const decide = filterFor(arch, true);
        for (const [name, type, expected] of types) {
          assertDecision(decide(syscall, [AF_UNIX, type, 0]), expected, name);
        }
      });
    }
  }
});

Deno.test("planSeccomp() reads only the int of a socket family: high bits over AF_UNIX stay AF_UNIX", async (t) => {
  const family = 0xffffffff_00000000n | BigInt(AF_UNIX);
  for (const arch of ARCHES) {
    for (const syscall of ["socket", "socketpair"]) {
      await t.step(`${syscall} on ${arch}`, () => {
        const decide = filterFor(arch, true);
        assertDecision(decide(syscall, [family, SOCK_STREAM, 0]), ALLOW, "SOCK_STREAM");
        assertDecision(decide(syscall, [family, SOCK_SEQPACKET, 0]), ALLOW, "SOCK_SEQPACKET");
        assertDecision(decide(syscall, [family, SOCK_DGRAM, 0]), DENY, "SOCK_DGRAM");
        assertDecision(decide(syscall, [family, SOCK_RAW, 0]), DENY, "SOCK_RAW");
      });
    }
  }
});

Deno.test("planSeccomp() with the network restricted refuses sendto with a destination only", async (t) => {
  const destinations: [string, bigint, number][] = [
    ["NULL", 0n, ALLOW],
    ["a pointer in the low half", 0x1000n, DENY],
    ["a pointer in the high half only", 0x00007fff_00000000n, DENY],
    ["a pointer in both halves", 0x00007fff_deadbee0n, DENY],
    ["all bits set", 0xffffffff_ffffffffn, DENY],
  ];
  for (const arch of ARCHES) {
    await t.step(arch, () => {
      const decide = filterFor(arch, true);
      for (const [name, destination, expected] of destinations) {
        assertDecision(decide("sendto", [3, 0x1000, 5, 0, destination, 16]), expected, name);
      }
    });
  }
});

Deno.test("planSeccomp() leaves sendmsg, recvmsg, read and write alone", async (t) => {
  for (const arch of ARCHES) {
    for (const restrictNetwork of [true, false]) {
      await t.step(`${arch}, restrictNetwork ${restrictNetwork}`, () => {
        const decide = filterFor(arch, restrictNetwork);
        for (const name of ["sendmsg", "recvmsg", "read", "write"]) {
          assertDecision(decide(name, [3, 0x1000, 0x10, 0, 0, 0]), ALLOW, name);
          assertDecision(decide(name, [AF_INET, SOCK_DGRAM, 0, 0, 0x1000, 16]), ALLOW, name);
        }
      });
    }
  }
});

Deno.test("planSeccomp() allows every syscall its table does not name", async (t) => {
  for (const arch of ARCHES) {
    for (const restrictNetwork of [true, false]) {
      await t.step(`${arch}, restrictNetwork ${restrictNetwork}`, () => {
        const { program } = planSeccomp({ arch, restrictNetwork });
        const named = new Set(Object.values(SYSCALL_NUMBERS[arch]));
        for (let nr = 0; nr < 512; nr++) {
          if (named.has(nr)) continue;
          const args = [AF_INET, SOCK_DGRAM, TIOCSTI, 0, 0x1000, 0];
          assertDecision(runBpf(program, { nr, arch: AUDIT_ARCH[arch], args }), ALLOW, `nr ${nr}`);
        }
      });
    }
  }
});

Deno.test("planSeccomp() refuses the ioctls that type into the terminal, with or without network", async (t) => {
  const requests: [string, number | bigint, number][] = [
    ["TIOCSTI", TIOCSTI, DENY],
    ["TIOCLINUX", TIOCLINUX, DENY],
    // The kernel reads `unsigned int cmd`: high bits do not hide the request.
    ["TIOCSTI with high bits set", 0xffffffff_00000000n | BigInt(TIOCSTI), DENY],
    ["TIOCLINUX with high bits set", 0x00000001_00000000n | BigInt(TIOCLINUX), DENY],
    ["TCGETS", TCGETS, ALLOW],
    ["FIONREAD", 0x541b, ALLOW],
    ["zero", 0, ALLOW],
  ];
  for (const arch of ARCHES) {
    for (const restrictNetwork of [true, false]) {
      await t.step(`${arch}, restrictNetwork ${restrictNetwork}`, () => {
        const decide = filterFor(arch, restrictNetwork);
        for (const [name, request, expected] of requests) {
          assertDecision(decide("ioctl", [0, request, 0x1000]), expected, name);
        }
        // The request is the second argument; a TIOCSTI-valued fd is nothing special.
        assertDecision(decide("ioctl", [TIOCSTI, TCGETS, 0]), ALLOW, "fd 0x5412");
        // A request equal to another syscall's number must not fall into that syscall's rows.
        for (const [name, nr] of Object.entries(SYSCALL_NUMBERS[arch])) {
          assertDecision(decide("ioctl", [AF_INET, nr, nr]), ALLOW, `request = ${name}'s number`);
        }
      });
    }
  }
});

Deno.test("planSeccomp() with the network allowed allows IP sockets and connect, no AF_UNIX socket", async (t) => {
  for (const arch of ARCHES) {
    await t.step(arch, () => {
      const decide = filterFor(arch, false);
      assertDecision(decide("socket", [AF_INET, SOCK_STREAM, 0]), ALLOW, "socket(AF_INET)");
      assertDecision(decide("socket", [AF_INET6, SOCK_DGRAM, 0]), ALLOW, "socket(AF_INET6)");
      for (const type of [SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET]) {
        assertDecision(decide("socket", [AF_UNIX, type, 0]), DENY, `socket(AF_UNIX, ${type})`);
      }
      assertDecision(decide("socketpair", [AF_UNIX, SOCK_STREAM, 0]), ALLOW, "stream pair");
      assertDecision(decide("socketpair", [AF_UNIX, SOCK_DGRAM, 0]), DENY, "datagram pair");
      for (const name of ["connect", "bind", "listen", "accept", "accept4"]) {
        assertDecision(decide(name, [3, 0x1000, 16]), ALLOW, name);
      }
      assertDecision(decide("io_uring_setup", [8, 0x1000]), DENY, "io_uring (IORING_OP_SOCKET)");
      assertDecision(decide("sendto", [3, 0x1000, 5, 0, 0x1000, 16]), ALLOW, "sendto with address");
      assertDecision(decide("ioctl", [0, TIOCSTI, 0]), DENY, "TIOCSTI");
      const { program } = planSeccomp({ arch, restrictNetwork: false });
      const other = arch === "x86_64" ? AUDIT_ARCH_I386 : AUDIT_ARCH_X86_64;
      assertDecision(runBpf(program, { nr: 0, arch: other }), KILL, "foreign arch");
    });
  }
});

Deno.test("planSeccomp() with network-unix-sockets lets AF_UNIX reach out, and nothing else", async (t) => {
  for (const arch of ARCHES) {
    await t.step(`${arch}, network allowed: every socket`, () => {
      const decide = filterFor(arch, false, { restrictUnix: false });
      for (const family of [AF_UNIX, AF_INET]) {
        assertDecision(decide("socket", [family, SOCK_DGRAM, 0]), ALLOW, `socket(${family})`);
      }
      assertDecision(decide("io_uring_setup", [8, 0x1000]), ALLOW, "io_uring");
    });
    await t.step(`${arch}, network restricted: AF_UNIX of any type, connect, bind, listen`, () => {
      const decide = filterFor(arch, true, { restrictUnix: false });
      assertDecision(decide("socket", [AF_UNIX, SOCK_DGRAM, 0]), ALLOW, "AF_UNIX datagram");
      assertDecision(decide("socket", [AF_INET, SOCK_STREAM, 0]), DENY, "AF_INET");
      for (const name of ["connect", "bind", "listen", "accept", "accept4"]) {
        assertDecision(decide(name, [3, 0x1000, 16]), ALLOW, name);
      }
      assertDecision(decide("sendto", [3, 0x1000, 5, 0, 0x1000, 16]), ALLOW, "sendto to a name");
      assertDecision(decide("io_uring_setup", [8, 0x1000]), DENY, "io_uring");
    });
    await t.step(
      `${arch}, TCP ports: AF_UNIX streams beside TCP; listen goes to the supervisor`,
      () => {
        const decide = filterFor(arch, true, {
          restrictUnix: false,
          tcp: { connect: true, bind: false },
        });
        assertDecision(decide("socket", [AF_UNIX, SOCK_STREAM, 0]), ALLOW, "AF_UNIX stream");
        assertDecision(decide("socket", [AF_INET, SOCK_STREAM, 0]), ALLOW, "TCP");
        assertDecision(decide("socket", [AF_INET, SOCK_DGRAM, 0]), DENY, "UDP");
        assertDecision(decide("socket", [AF_NETLINK, SOCK_RAW, 0]), DENY, "netlink");
        assertDecision(decide("bind", [3, 0x1000, 16]), ALLOW, "bind (Landlock checks TCP ports)");
        assertDecision(decide("listen", [3, 16]), SECCOMP_RET_USER_NOTIF, "listen");
      },
    );
  }
});

Deno.test("planSeccomp() sends listen to the supervisor whenever a TCP socket could listen", async (t) => {
  for (const arch of ARCHES) {
    await t.step(`${arch}: network-bind-tcp`, () => {
      const decide = filterFor(arch, true, { tcp: { connect: false, bind: true } });
      assertDecision(decide("listen", [3, 16]), SECCOMP_RET_USER_NOTIF, "listen");
      assertDecision(decide("accept4", [3, 0, 0, 0]), ALLOW, "accept4");
      assert.deepEqual(
        planSeccomp({ arch, restrictNetwork: true, tcp: { connect: false, bind: true } }).notify,
        [
          "listen",
        ],
      );
    });
    await t.step(`${arch}: network-connect-tcp alone refuses listen outright`, () => {
      const decide = filterFor(arch, true, { tcp: { connect: true, bind: false } });
      assertDecision(decide("listen", [3, 16]), DENY, "listen");
      assert.deepEqual(planSeccomp({ arch, restrictNetwork: true }).notify, []);
    });
  }
});

Deno.test("planSeccomp() answers clone3 ENOSYS, so libc falls back to clone (no CLONE_INTO_CGROUP)", async (t) => {
  for (const arch of ARCHES) {
    for (const restrictNetwork of [true, false]) {
      await t.step(`${arch}, restrictNetwork ${restrictNetwork}`, () => {
        const decide = filterFor(arch, restrictNetwork);
        assertDecision(
          decide("clone3", [0x1000, 88]),
          (SECCOMP_RET_ERRNO | ENOSYS) >>> 0,
          "clone3",
        );
      });
    }
  }
});

Deno.test("planSeccomp() refuses System V IPC, which no path guards", async (t) => {
  const calls = [
    "shmget",
    "shmat",
    "shmctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
  ];
  for (const arch of ARCHES) {
    await t.step(arch, () => {
      const decide = filterFor(arch, false, { restrictUnix: false });
      for (const name of calls) assertDecision(decide(name, [0, 4096, 0o1600]), DENY, name);
    });
  }
});

Deno.test("planSeccomp() as root refuses the set-user-ID and set-group-ID bits, and only them", async (t) => {
  const cases: [string, (number | bigint)[], number][] = [
    ["fchmod", [3, 0o4755], DENY],
    ["fchmod", [3, 0o2755], DENY],
    ["fchmod", [3, 0o755], ALLOW],
    ["fchmod", [3, 0o1777], ALLOW],
    ["fchmodat", [-100, 0x1000, 0o6755], DENY],
    ["fchmodat", [-100, 0x1000, 0o644], ALLOW],
    ["fchmodat2", [-100, 0x1000, 0o4700, 0], DENY],
    ["openat", [-100, 0x1000, 0o100 | 1, 0o4755], DENY],
    ["openat", [-100, 0x1000, 0o20200000 | 2, 0o2755], DENY],
    ["openat", [-100, 0x1000, 0o100 | 1, 0o755], ALLOW],
    // Without O_CREAT the mode is not used: whatever a runtime passes there is not refused.
    ["openat", [-100, 0x1000, 0, 0o4755], ALLOW],
    ["mknodat", [-100, 0x1000, 0o104755, 0], DENY],
    ["openat2", [-100, 0x1000, 0x1000, 24], (SECCOMP_RET_ERRNO | ENOSYS) >>> 0],
  ];
  for (const arch of ARCHES) {
    await t.step(arch, () => {
      const decide = filterFor(arch, true, { rootSetIdBits: true });
      for (const [name, args, expected] of cases) {
        assertDecision(decide(name, args), expected, `${name}(${args.map(String)})`);
      }
      if (arch === "x86_64") {
        assertDecision(decide("chmod", [0x1000, 0o4755]), DENY, "chmod u+s");
        assertDecision(decide("chmod", [0x1000, 0o755]), ALLOW, "chmod 755");
        assertDecision(decide("open", [0x1000, 0o100 | 1, 0o4755]), DENY, "open O_CREAT 4755");
        assertDecision(decide("creat", [0x1000, 0o2755]), DENY, "creat 2755");
      }
      const notRoot = filterFor(arch, true);
      assertDecision(notRoot("fchmod", [3, 0o4755]), ALLOW, "not root: the kernel's rules");
    });
  }
});

Deno.test("seccompRules() gives every row a reason and a number on both architectures", async (t) => {
  for (const restrictNetwork of [true, false]) {
    for (const scoped of [true, false]) {
      await t.step(`restrictNetwork ${restrictNetwork}, Landlock scoping ${scoped}`, () => {
        const options = {
          restrictNetwork,
          ptraceScoped: scoped,
          signalsScoped: scoped,
          rootSetIdBits: true,
        };
        const rules = seccompRules(options);
        assert.ok(rules.length > 0);
        for (const rule of rules) {
          assert.equal(typeof rule.why, "string");
          assert.ok(rule.why.trim().length > 0, `${rule.syscall} has no reason`);
          const enosys = ["clone3", "openat2"].includes(rule.syscall);
          assert.equal(rule.errno, enosys ? ENOSYS : EPERM, rule.syscall);
          for (const arch of ARCHES) {
            const legacy = arch === "aarch64" &&
              ["open", "creat", "chmod", "mknod"].includes(rule.syscall);
            if (!legacy) {
              assert.equal(typeof SYSCALL_NUMBERS[arch][rule.syscall], "number", rule.syscall);
            }
          }
        }
        assert.deepEqual(planSeccomp({ arch: "x86_64", ...options }).rules, rules);
        const aarch64 = planSeccomp({ arch: "aarch64", ...options }).rules.map((rule) =>
          rule.syscall
        );
        assert.ok(!aarch64.includes("chmod") && aarch64.includes("fchmodat"));
      });
    }
  }
  const confined = {
    restrictNetwork: false,
    restrictUnix: false,
    ptraceScoped: true,
    signalsScoped: true,
  };
  // With everything confined by Landlock and every socket granted, what no layer but seccomp
  // covers is left: the terminal, the keyrings, clone3, System V IPC, and the limits and
  // scheduling of other processes.
  assert.deepEqual(
    [...new Set(seccompRules(confined).map((rule) => rule.syscall))],
    [
      "ioctl",
      "keyctl",
      "add_key",
      "request_key",
      "clone3",
      "shmget",
      "shmat",
      "shmctl",
      "msgget",
      "msgsnd",
      "msgrcv",
      "msgctl",
      "semget",
      "semop",
      "semtimedop",
      "semctl",
      "prlimit64",
      "sched_setaffinity",
      "sched_setscheduler",
      "sched_setparam",
      "sched_setattr",
      "setpriority",
      "ioprio_set",
    ],
  );
  // Left out, the Landlock facts default to "not confined": the rows are there.
  const names = seccompRules({ restrictNetwork: false }).map((rule) => rule.syscall);
  for (const name of ["ptrace", "process_vm_readv", "pidfd_getfd", "kill", "pidfd_send_signal"]) {
    assert.ok(names.includes(name), name);
  }
});

Deno.test("planSeccomp() without a Landlock domain refuses ptrace, process_vm_readv/writev and pidfd_getfd", async (t) => {
  const names = ["ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd"];
  for (const arch of ARCHES) {
    for (const restrictNetwork of [true, false]) {
      await t.step(`${arch}, restrictNetwork ${restrictNetwork}`, () => {
        const scoped = planSeccomp({ arch, restrictNetwork, ptraceScoped: true }).program;
        const unscoped = planSeccomp({ arch, restrictNetwork, ptraceScoped: false }).program;
        for (const name of names) {
          const data = { nr: SYSCALL_NUMBERS[arch][name], arch: AUDIT_ARCH[arch] };
          // PTRACE_ATTACH (16) to pid 1234; the other calls' first argument is a pid or pidfd.
          const args = [16, 1234, 0x1000, 0];
          // Positive control: with a Landlock domain, the kernel decides, and the filter allows.
          assertDecision(runBpf(scoped, { ...data, args }), ALLOW, `${name} with a domain`);
          assertDecision(runBpf(unscoped, { ...data, args }), DENY, `${name} without one`);
          assertDecision(runBpf(unscoped, data), DENY, `${name}() with zero arguments`);
        }
      });
    }
  }
});

Deno.test("planSeccomp() without signal scoping refuses kill(-1) and pidfd_send_signal, not kill(pid)", async (t) => {
  const SIGKILL = 9;
  const kills: [string, number | bigint, boolean][] = [
    ["kill(-1)", -1, true],
    // The kernel reads `pid_t pid`: the low 32 bits, whatever the high half holds.
    ["kill(-1) as a 64-bit -1", 0xffffffff_ffffffffn, true],
    ["kill(-1) with other high bits", 0x00000001_ffffffffn, true],
    ["kill(1234)", 1234, false],
    ["kill(0), the caller's process group", 0, false],
    ["kill(-1234), a process group", -1234, false],
  ];
  for (const arch of ARCHES) {
    await t.step(arch, () => {
      const scoped = planSeccomp({ arch, restrictNetwork: true, signalsScoped: true }).program;
      const unscoped = planSeccomp({ arch, restrictNetwork: true, signalsScoped: false }).program;
      const at = (name: string, args: (number | bigint)[]) => ({
        nr: SYSCALL_NUMBERS[arch][name],
        arch: AUDIT_ARCH[arch],
        args,
      });
      for (const [name, pid, refused] of kills) {
        const data = at("kill", [pid, SIGKILL]);
        assertDecision(runBpf(scoped, data), ALLOW, `${name} with the signal scope`);
        assertDecision(runBpf(unscoped, data), refused ? DENY : ALLOW, name);
      }
      const signal = at("pidfd_send_signal", [3, SIGKILL, 0, 0]);
      assertDecision(runBpf(scoped, signal), ALLOW, "pidfd_send_signal with the signal scope");
      assertDecision(runBpf(unscoped, signal), DENY, "pidfd_send_signal without it");
    });
  }
});

Deno.test("planSeccomp() never refuses pidfd_open: it only names a process", () => {
  // From include/uapi/asm-generic/unistd.h: the same number on both architectures.
  const PIDFD_OPEN = 434;
  for (const arch of ARCHES) {
    const { program } = planSeccomp({ arch, restrictNetwork: true });
    assertDecision(
      runBpf(program, { nr: PIDFD_OPEN, arch: AUDIT_ARCH[arch], args: [1] }),
      ALLOW,
      arch,
    );
  }
});

Deno.test("compileSeccomp() tests a syscall's rows in order, all conditions of a row together", () => {
  const rules: SeccompRule[] = [
    {
      syscall: "ioctl",
      when: [{ arg: 0, op: "eq", value: 7 }, { arg: 2, op: "ne", value: 0x20, mask: 0xf0 }],
      errno: 13,
      why: "first row",
    },
    { syscall: "ioctl", when: [{ arg: 0, op: "eq", value: 7 }], errno: 22, why: "second row" },
    { syscall: "bind", when: [{ arg: 3, op: "eq", value: 0xdeadbeef }], errno: 0x10063, why: "" },
    { syscall: "listen", when: [], errno: 95, why: "always" },
  ];
  for (const arch of ARCHES) {
    const program = compileSeccomp(arch, rules);
    validate(program);
    const run = (name: string, args: (number | bigint)[]) =>
      runBpf(program, { nr: SYSCALL_NUMBERS[arch][name], arch: AUDIT_ARCH[arch], args });
    const errno = (n: number) => (SECCOMP_RET_ERRNO | n) >>> 0;
    assertDecision(run("ioctl", [7, 0, 0x31]), errno(13), "both conditions of row 1");
    assertDecision(run("ioctl", [7, 0, 0x2f]), errno(22), "row 1's mask hides the low bits");
    assertDecision(run("ioctl", [8, 0, 0x31]), ALLOW, "no row matches");
    assertDecision(run("bind", [0, 0, 0, 0xdeadbeef]), errno(0x63), "errno kept to 16 bits");
    assertDecision(run("bind", [0, 0, 0, 0xdeadbeee]), ALLOW, "other value");
    assertDecision(run("listen", []), errno(95), "unconditional row");
    assertDecision(run("connect", []), ALLOW, "syscall without rows");
  }
});

Deno.test("compileSeccomp() with no rows checks the architecture and allows the rest", () => {
  for (const arch of ARCHES) {
    const program = compileSeccomp(arch, []);
    validate(program);
    assertDecision(runBpf(program, { nr: 41, arch: AUDIT_ARCH[arch] }), ALLOW, arch);
    assertDecision(runBpf(program, { nr: 41, arch: AUDIT_ARCH_I386 }), KILL, arch);
  }
});

Deno.test("compileSeccomp() refuses a syscall it has no number for", () => {
  const rules: SeccompRule[] = [{ syscall: "frobnicate", when: [], errno: EPERM, why: "test" }];
  assert.throws(() => compileSeccomp("aarch64", rules), /aarch64.*frobnicate/);
});

Deno.test("the test BPF interpreter refuses what the kernel's seccomp checker refuses", async (t) => {
  const ret: Instruction = { code: 0x06, jt: 0, jf: 0, k: ALLOW };
  const cases: [string, Instruction[]][] = [
    ["an empty program", []],
    ["more than 4096 instructions", new Array(4097).fill(ret)],
    ["a last instruction that is not RET", [ret, { code: 0x20, jt: 0, jf: 0, k: 0 }]],
    ["a load past seccomp_data", [{ code: 0x20, jt: 0, jf: 0, k: 64 }, ret]],
    ["an unaligned load", [{ code: 0x20, jt: 0, jf: 0, k: 2 }, ret]],
    ["a half-word load", [{ code: 0x28, jt: 0, jf: 0, k: 0 }, ret]],
    ["an indirect load", [{ code: 0x40, jt: 0, jf: 0, k: 0 }, ret]],
    ["a jump past the end", [{ code: 0x15, jt: 1, jf: 0, k: 0 }, ret]],
    ["a JA past the end", [{ code: 0x05, jt: 0, jf: 0, k: 1 }, ret]],
    ["a division by constant zero", [{ code: 0x34, jt: 0, jf: 0, k: 0 }, ret]],
    ["an unknown opcode", [{ code: 0xff, jt: 0, jf: 0, k: 0 }, ret]],
    ["a scratch slot out of range", [{ code: 0x02, jt: 0, jf: 0, k: 16 }, ret]],
  ];
  for (const [name, program] of cases) {
    await t.step(name, () => {
      assert.throws(() => runBpf(program, { nr: 0, arch: 0 }), BpfError);
    });
  }
});

Deno.test("the test BPF interpreter computes what the kernel computes", () => {
  const data = seccompData({ nr: -1, arch: 0xc000003e, args: [0xffffffff_00000005n, 9] });
  const view = new DataView(data.buffer);
  assert.equal(view.getInt32(0, true), -1);
  assert.equal(view.getUint32(4, true), 0xc000003e);
  assert.equal(view.getUint32(16, true), 5);
  assert.equal(view.getUint32(20, true), 0xffffffff);
  assert.equal(view.getUint32(24, true), 9);
  const program: Instruction[] = [
    { code: 0x20, jt: 0, jf: 0, k: 16 }, // A = args[0] low
    { code: 0x54, jt: 0, jf: 0, k: 0x4 }, // A &= 4
    { code: 0x25, jt: 0, jf: 4, k: 3 }, // A > 3 ?
    { code: 0x20, jt: 0, jf: 0, k: 24 }, // A = args[1] low
    { code: 0x35, jt: 0, jf: 2, k: 9 }, // A >= 9 ?
    { code: 0x45, jt: 0, jf: 1, k: 0x8 }, // A & 8 ?
    { code: 0x16, jt: 0, jf: 0, k: 0 }, // RET A
    { code: 0x06, jt: 0, jf: 0, k: 0 },
  ];
  assert.equal(runBpf(program, data), 9);
  assert.equal(runBpf(program, { nr: 0, arch: 0, args: [1, 9] }), 0);
  assert.equal(runBpf(program, { nr: 0, arch: 0, args: [4, 8] }), 0);
  assert.equal(runBpf(program, { nr: 0, arch: 0, args: [4, 0x11] }), 0);
  assert.equal(runBpf(program, { nr: 0, arch: 0, args: [4, 0x1a] }), 0x1a);
});

// Every test that imports ffi/seccomp.ts runs without FFI permission, whatever the order, so that
// a libc opened at import time fails the first of them: only the install may touch libc.
const NO_FFI: Deno.TestDefinition["permissions"] = {
  read: "inherit",
  write: "inherit",
  net: "inherit",
  env: "inherit",
  run: "inherit",
  sys: "inherit",
  import: "inherit",
  ffi: false,
};

Deno.test({
  name: "importing ffi/seccomp.ts does not open libc",
  permissions: NO_FFI,
  async fn() {
    assert.equal((await Deno.permissions.query({ name: "ffi" })).state === "granted", false);
    const { encodeProgram, installSeccomp } = await import("../ffi/seccomp.ts");
    assert.equal(typeof encodeProgram, "function");
    assert.equal(typeof installSeccomp, "function");
  },
});

Deno.test({
  name: "encodeProgram() lays out struct sock_filter: 8 little-endian bytes per instruction",
  permissions: NO_FFI,
  async fn() {
    const { encodeProgram } = await import("../ffi/seccomp.ts");
    assert.deepEqual(encodeProgram([]), new Uint8Array(0));
    const bytes = encodeProgram([
      { code: 0x20, jt: 0, jf: 0, k: 4 },
      { code: 0x15, jt: 1, jf: 2, k: AUDIT_ARCH_X86_64 },
      { code: 0x06, jt: 0, jf: 0, k: KILL },
      { code: 0x1234, jt: 0xff, jf: 0x80, k: 0xffffffff },
    ]);
    assert.deepEqual(
      [...bytes],
      [
        [0x20, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00],
        [0x15, 0x00, 0x01, 0x02, 0x3e, 0x00, 0x00, 0xc0],
        [0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80],
        [0x34, 0x12, 0xff, 0x80, 0xff, 0xff, 0xff, 0xff],
      ].flat(),
    );
  },
});

Deno.test({
  name: "encodeProgram() of a compiled filter decodes back to the same program",
  permissions: NO_FFI,
  async fn() {
    const { encodeProgram } = await import("../ffi/seccomp.ts");
    for (const arch of ARCHES) {
      const { program } = planSeccomp({ arch, restrictNetwork: true });
      const bytes = encodeProgram(program);
      assert.equal(bytes.length, program.length * 8);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const decoded = program.map((_, i): Instruction => ({
        code: view.getUint16(i * 8, true),
        jt: view.getUint8(i * 8 + 2),
        jf: view.getUint8(i * 8 + 3),
        k: view.getUint32(i * 8 + 4, true),
      }));
      assert.deepEqual(decoded, program);
    }
  },
});
