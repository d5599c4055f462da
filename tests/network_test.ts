// End to end: no network inside the sandbox. Every tool first reaches a loopback listener this
// test started (directly, then under the CLI with network-full-access), then fails to reach it
// under the default policy; the listener counts who came. Nothing but our own listeners on
// 127.0.0.0/8 is ever contacted.

import assert from "node:assert/strict";
import { MODES, run, runCli, skipReason, tempDir, which } from "./_helpers.ts";
import {
  assertCannotReach,
  assertRanAndFailed,
  cliCommand,
  ConnectionCounter,
  Coprocess,
  DatagramCounter,
  dnsAnswer,
  icmpEchoRequests,
  PRIVATE_RESOLV_CONF_UNAVAILABLE,
  PYTHON,
  runWithResolvConf,
} from "./_net.ts";

const notInstalled = (...tools: string[]) => {
  const missing = tools.filter((tool) => !which(tool));
  return missing.length ? `${missing.join(", ")} not installed` : undefined;
};

/** A TCP client case: the tool, and its command line for a port. */
function tcpClientTest(name: string, tool: string, commandFor: (port: number) => string[]): void {
  const missing = notInstalled(tool);
  Deno.test({
    name: skipReason(name, missing),
    ignore: !!missing,
    async fn(t) {
      const listener = ConnectionCounter.tcp();
      try {
        await assertCannotReach(t, {
          command: commandFor(listener.port),
          count: () => listener.settle(),
        });
      } finally {
        await listener.close();
      }
    },
  });
}

const url = (port: number) => `http://127.0.0.1:${port}/`;

// Proxies are switched off so that nothing but the listener is ever contacted.
tcpClientTest(
  "curl cannot reach a loopback listener inside the sandbox",
  "curl",
  (port) => ["curl", "-sS", "--noproxy", "*", "--max-time", "5", url(port)],
);

tcpClientTest(
  "wget cannot reach a loopback listener inside the sandbox",
  "wget",
  (port) => ["wget", "-q", "-O", "/dev/null", "--no-proxy", "--tries=1", "--timeout=5", url(port)],
);

tcpClientTest(
  "nc -z cannot reach a loopback listener inside the sandbox",
  "nc",
  (port) => ["nc", "-z", "127.0.0.1", String(port)],
);

// -F /dev/null: no user or system ssh_config (a ProxyCommand or ProxyJump would go elsewhere).
tcpClientTest(
  "ssh cannot reach a loopback listener inside the sandbox",
  "ssh",
  (port) => [
    "ssh",
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=2",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-p",
    String(port),
    "127.0.0.1",
    "true",
  ],
);

tcpClientTest(
  "bash /dev/tcp cannot reach a loopback listener inside the sandbox",
  "bash",
  (port) => ["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${port}`],
);

// Granting disk rights must not grant the network on the way.
for (
  const options of [
    ["--full-auto"],
    // As root, full write runs only as another user: it could reach the network otherwise.
    ["-s", "disk-full-write-access", ...(Deno.uid() === 0 ? ["--run-as", "nobody"] : [])],
    ["-s", "disk-full-read-access", "-s", "disk-write-cwd"],
  ]
) {
  Deno.test({
    name: skipReason(
      `${options.join(" ")} still cannot reach a loopback listener inside the sandbox`,
      notInstalled("bash"),
    ),
    ignore: !!notInstalled("bash"),
    async fn(t) {
      const listener = ConnectionCounter.tcp();
      // A project folder of its own: the cwd these options make writable (and --run-as enters).
      const cwd = tempDir();
      Deno.chmodSync(cwd, 0o755);
      try {
        await assertCannotReach(t, {
          command: ["bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${listener.port}`],
          count: () => listener.settle(),
          options: [...options, "--cwd", cwd],
        });
      } finally {
        await listener.close();
        Deno.removeSync(cwd, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: skipReason(
    "bash /dev/udp cannot send a datagram to a loopback listener inside the sandbox",
    notInstalled("bash"),
  ),
  ignore: !!notInstalled("bash"),
  async fn(t) {
    const listener = await DatagramCounter.open("127.0.0.1", 0);
    try {
      await assertCannotReach(t, {
        command: ["bash", "-c", `echo datagram > /dev/udp/127.0.0.1/${listener.address.port}`],
        count: () => listener.settle(),
      });
    } finally {
      await listener.close();
    }
  },
});

/**
 * Why ping cannot be the positive control here (it must reach 127.0.0.1 inside the sandbox with
 * network-full-access): the sandbox keeps no capability, so a ping marked with file capabilities
 * is refused at execve (as root, whose bounding set is emptied) or runs without them (no_new_privs),
 * and a ping without them needs net.ipv4.ping_group_range to include the caller's group.
 */
const PING_UNUSABLE: string | undefined = (() => {
  const missing = notInstalled("ping");
  if (missing) return missing;
  if (PYTHON) {
    const marked = new Deno.Command(PYTHON, {
      args: ["-c", "import os,shutil;os.getxattr(shutil.which('ping'),'security.capability')"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    if (marked.success) {
      return "ping is marked with file capabilities (cap_net_raw), which the sandbox keeps for " +
        "no one";
    }
  }
  try {
    const [low, high] = Deno.readTextFileSync("/proc/sys/net/ipv4/ping_group_range").trim()
      .split(/\s+/).map(Number);
    const gid = Deno.gid() ?? -1;
    if (gid < low || gid > high) {
      return `net.ipv4.ping_group_range (${low} ${high}) leaves out group ${gid}: ping needs ` +
        "a raw socket, which the sandbox allows no one";
    }
  } catch {
    return "no net.ipv4.ping_group_range here";
  }
  return undefined;
})();

// ICMP has no listener of ours: the kernel answers echo requests and counts them, per network
// namespace. Another ping elsewhere meanwhile can only make the denial step fail, never pass.
Deno.test({
  name: skipReason("ping cannot reach 127.0.0.1 inside the sandbox", PING_UNUSABLE),
  ignore: PING_UNUSABLE !== undefined,
  async fn(t) {
    await assertCannotReach(t, {
      command: ["ping", "-c", "1", "-W", "2", "127.0.0.1"],
      count: () => Promise.resolve(icmpEchoRequests()),
      denied(out, what) {
        // Where ping has file capabilities (cap_net_raw=ep) and the sandbox could empty the
        // bounding set (as root), execve refuses a program that cannot get the capabilities it
        // is marked to need: the denial comes before ping runs. Anywhere else, ping runs and
        // its socket is refused.
        if (out.code === 126 && Deno.uid() === 0) {
          assert.match(
            out.stderr,
            /^llmx-sandbox: ping: cannot be run: Operation not permitted \(.*file capabilities/m,
          );
        } else {
          assertRanAndFailed(out, what);
        }
      },
    });
  },
});

// Candidates for our resolver's address: loopback, and port 53 is rarely taken on these.
const RESOLVER_ADDRESSES = ["127.0.0.77", "127.0.0.78", "127.0.0.79", "127.0.0.177"];
const ANSWER = [127, 0, 0, 1];

const getentMissing = notInstalled("getent") ?? PRIVATE_RESOLV_CONF_UNAVAILABLE;
Deno.test({
  name: skipReason(
    "getent cannot query a loopback DNS resolver inside the sandbox",
    getentMissing,
  ),
  ignore: !!getentMissing,
  async fn(t) {
    let resolver: DatagramCounter | undefined;
    const failures: string[] = [];
    for (const address of RESOLVER_ADDRESSES) {
      try {
        resolver = await DatagramCounter.open(address, 53, (query) => dnsAnswer(query, ANSWER));
        break;
      } catch (error) {
        failures.push(`${address}: ${(error as Error).message}`);
      }
    }
    assert.ok(resolver, `No loopback address to run a resolver on: ${failures.join("; ")}`);
    const dir = tempDir();
    try {
      const resolvConf = `${dir}/resolv.conf`;
      Deno.writeTextFileSync(
        resolvConf,
        `nameserver ${resolver.address.address}\noptions timeout:1 attempts:1\n`,
      );
      await assertCannotReach(t, {
        command: ["getent", "ahosts", "some.name.test"],
        count: () => resolver.settle(),
        launcher: {
          direct: (command) => runWithResolvConf(resolvConf, command),
          cli: (args) => runWithResolvConf(resolvConf, cliCommand(args)),
        },
        reached(out) {
          assert.equal(out.code, 0, out.stderr);
          assert.match(out.stdout, /^127\.0\.0\.1 +STREAM some\.name\.test$/m);
        },
      });
    } finally {
      await resolver.close();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

// Creating the socket is refused outright for every family but AF_UNIX.
const SOCKET_PY = `
import errno, socket, sys
family = {
    "AF_INET": (socket.AF_INET, socket.SOCK_STREAM, 0),
    "AF_INET6": (socket.AF_INET6, socket.SOCK_STREAM, 0),
    "AF_NETLINK": (socket.AF_NETLINK, socket.SOCK_RAW, 0),  # NETLINK_ROUTE
}[sys.argv[1]]
try:
    socket.socket(*family).close()
except OSError as error:
    print("refused", errno.errorcode.get(error.errno, error.errno))
    sys.exit(1)
print("created")
`;

for (const family of ["AF_INET", "AF_INET6", "AF_NETLINK"]) {
  const missing = PYTHON ? undefined : "python3 not installed";
  Deno.test({
    name: skipReason(`socket(${family}) is refused with EPERM inside the sandbox`, missing),
    ignore: !!missing,
    async fn(t) {
      const command = [PYTHON!, "-c", SOCKET_PY, family];
      await t.step("positive control: created when run directly", async () => {
        const out = await run(command[0], command.slice(1));
        assert.equal(out.stdout, "created\n", out.stderr);
      });
      for (const mode of MODES) {
        await t.step(
          `${mode.name}: positive control: created with network-full-access`,
          async () => {
            const out = await runCli([
              ...mode.flags,
              "-s",
              "network-full-access",
              "--",
              ...command,
            ]);
            assert.equal(out.stdout, "created\n", out.stderr);
            assert.equal(out.code, 0);
          },
        );
        await t.step(`${mode.name}: refused by default`, async () => {
          const out = await runCli([...mode.flags, "--", ...command]);
          assertRanAndFailed(out, `socket(${family})`);
          assert.equal(out.stdout, "refused EPERM\n", out.stderr);
        });
      }
    },
  });
}

// Holds a fresh, unconnected TCP socket for each line read, and prints "PID FD" for it.
const HOLDER_PY = `
import os, socket, sys
held = []
while sys.stdin.readline():
    held.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    print(os.getpid(), held[-1].fileno(), flush=True)
`;

// Copies another process's descriptor with pidfd_getfd, then connects it to the listener.
const BORROW_PY = `
import ctypes, errno, os, socket, sys
SYS_pidfd_getfd = 438  # The same number on x86_64 and aarch64.
pid, fd, port = map(int, sys.argv[1:4])
libc = ctypes.CDLL(None, use_errno=True)
try:
    borrowed = libc.syscall(SYS_pidfd_getfd, os.pidfd_open(pid), fd, 0)
    if borrowed < 0:
        raise OSError(ctypes.get_errno(), "pidfd_getfd")
    socket.socket(fileno=borrowed).connect(("127.0.0.1", port))
except OSError as error:
    print("refused", errno.errorcode.get(error.errno, error.errno))
    sys.exit(1)
print("reached")
`;

// No network-full-access control here: with anything restricted, Landlock keeps ptrace-class
// access (pidfd_getfd included) to processes outside the sandbox, whatever the network policy.
Deno.test({
  name: skipReason(
    "a socket borrowed from a process outside (pidfd_getfd) cannot reach a loopback listener " +
      "inside the sandbox",
    PYTHON ? undefined : "python3 not installed",
  ),
  ignore: !PYTHON,
  async fn(t) {
    const listener = ConnectionCounter.tcp();
    const holder = new Coprocess(PYTHON!, ["-c", HOLDER_PY]);
    try {
      // A fresh socket each time: one the control connected would fail the next connect anyway.
      const borrow = async () => {
        await holder.writeLine("socket");
        const [pid, fd] = (await holder.readLine() ?? "").split(" ");
        assert.match(fd ?? "", /^[0-9]+$/, "the holder says which socket it holds");
        return [PYTHON!, "-c", BORROW_PY, pid, fd, String(listener.port)];
      };
      let seen = await listener.settle();
      await t.step("positive control: reaches it when run directly", async () => {
        const command = await borrow();
        const out = await run(command[0], command.slice(1));
        const before = seen;
        seen = await listener.settle();
        assert.equal(out.stdout, "reached\n", out.stderr);
        assert.ok(seen > before, "the borrowed socket reaches the listener");
      });
      for (const mode of MODES) {
        await t.step(`${mode.name}: does not reach it by default`, async () => {
          const out = await runCli([...mode.flags, "--", ...await borrow()]);
          const before = seen;
          seen = await listener.settle();
          assert.equal(seen, before, "a borrowed socket must not reach the listener from inside");
          assertRanAndFailed(out, "pidfd_getfd");
          assert.equal(out.stdout, "refused EPERM\n", out.stderr);
        });
      }
    } finally {
      await holder.close();
      await listener.close();
    }
  },
});
