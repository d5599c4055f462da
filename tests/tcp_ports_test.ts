// End to end: network-connect-tcp=PORT and network-bind-tcp=PORT open one TCP port while the
// rest of the network stays closed. Every denial first shows the same connection or datagram
// reaching a loopback listener this test started, without the sandbox; listeners count who
// came. Nothing but our own listeners on 127.0.0.1 (and a UNIX socket in our temp folder) is
// ever contacted.

import assert from "node:assert/strict";
import { MODES, type Output, run, runCli, skipReason, tempDir, which } from "./_helpers.ts";
import {
  assertRanAndFailed,
  cliCommand,
  ConnectionCounter,
  Coprocess,
  DatagramCounter,
} from "./_net.ts";
import { probeKernel } from "../exec/kernel.ts";

const ABI = probeKernel().landlockAbi;
const NO_PYTHON = which("python3") ? undefined : "python3 not installed";
const NO_TCP_RULES = ABI < 4 ? `Landlock ABI ${ABI} has no TCP port rules (needs 4)` : undefined;
const MISSING = NO_TCP_RULES ?? NO_PYTHON;

const EPERM = 1;
const EACCES = 13;

// Each script prints what happened: the success word, or "errno N" and exit 3.
const CONNECT_PY = `
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).close()
except OSError as e:
    print("errno", e.errno)
    sys.exit(3)
print("connected")
`;

const UDP_PY = `
import socket, sys
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"datagram", ("127.0.0.1", int(sys.argv[1])))
except OSError as e:
    print("errno", e.errno)
    sys.exit(3)
print("sent")
`;

const UNIX_PY = `
import socket, sys
try:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(sys.argv[1])
except OSError as e:
    print("errno", e.errno)
    sys.exit(3)
print("connected")
`;

const SOCKETPAIR_PY = `
import socket
a, b = socket.socketpair()
a.sendall(b"ping")
print(b.recv(4).decode())
`;

const SOCKET_PY = `
import socket, sys
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM, int(sys.argv[1])).close()
except OSError as e:
    print("errno", e.errno)
    sys.exit(3)
print("created")
`;

const BIND_PY = `
import socket, sys
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(1)
    s.close()
except OSError as e:
    print("errno", e.errno)
    sys.exit(3)
print("bound")
`;

// Listens on a port, says "ready", then on each line read from stdin takes every connection
// waiting without blocking and prints the running total. A connect() that returned has been
// queued on the listener, so a total read after it is exact.
const SERVER_PY = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
s.setblocking(False)
print("ready", flush=True)
total = 0
while sys.stdin.readline():
    while True:
        try:
            s.accept()[0].close()
        except BlockingIOError:
            break
        total += 1
    print(total, flush=True)
`;

const TFO_PY = `
import socket, sys
how, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    if how == "sendto":
        s.sendto(b"x", socket.MSG_FASTOPEN, ("127.0.0.1", port))
    else:
        s.sendmsg([b"x"], [], socket.MSG_FASTOPEN, ("127.0.0.1", port))
except OSError as e:
    print("errno", e.errno)
    sys.exit(3)
s.close()
print("sent")
`;

/** A TCP port nothing listens on: bound to port 0 once, then released. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const py = (script: string, ...args: (string | number)[]) => [
  "python3",
  "-c",
  script,
  ...args.map(String),
];

/** Runs a command directly (no sandbox). */
const direct = (command: string[]) => run(command[0], command.slice(1));

function assertErrno(out: Output, errno: number, what: string): void {
  assertRanAndFailed(out, what);
  assert.equal(out.stdout.trim(), `errno ${errno}`, `${what}: ${out.stderr}`);
}

/** Asserts that `action` raised the listener's count by exactly `by`. */
async function assertCount(
  count: () => Promise<number>,
  by: number,
  action: () => Promise<Output>,
  what: string,
): Promise<Output> {
  const before = await count();
  const out = await action();
  const after = await count();
  assert.equal(
    after - before,
    by,
    `${what}: count ${before} -> ${after} (exit ${out.code}: ${out.stdout} ${out.stderr})`,
  );
  return out;
}

Deno.test({
  name: skipReason("network-connect-tcp=A reaches port A and no other port", MISSING),
  ignore: !!MISSING,
  async fn(t) {
    const a = ConnectionCounter.tcp();
    const b = ConnectionCounter.tcp();
    const count = (listener: ConnectionCounter) => () => listener.settle();
    const curl = (port: number) => [
      "curl",
      "-sS",
      "--noproxy",
      "*",
      "--max-time",
      "5",
      `http://127.0.0.1:${port}/`,
    ];
    try {
      await t.step("positive control: python3 reaches both without the sandbox", async () => {
        for (const listener of [a, b]) {
          const out = await assertCount(
            count(listener),
            1,
            () => direct(py(CONNECT_PY, listener.port)),
            `port ${listener.port}`,
          );
          assert.equal(out.stdout, "connected\n");
        }
      });
      for (const mode of MODES) {
        const sandboxed = (command: string[]) =>
          runCli([...mode.flags, "-s", `network-connect-tcp=${a.port}`, "--", ...command]);
        await t.step(`${mode.name}: python3 reaches A`, async () => {
          const out = await assertCount(count(a), 1, () => sandboxed(py(CONNECT_PY, a.port)), "A");
          assert.equal(out.code, 0, out.stderr);
          assert.equal(out.stdout, "connected\n");
        });
        await t.step(`${mode.name}: python3 does not reach B (EACCES)`, async () => {
          const out = await assertCount(count(b), 0, () => sandboxed(py(CONNECT_PY, b.port)), "B");
          assertErrno(out, EACCES, "connect to B");
        });
        await t.step({
          name: skipReason(
            `${mode.name}: curl reaches A, not B`,
            which("curl") ? undefined : "curl not installed",
          ),
          ignore: !which("curl"),
          async fn() {
            await assertCount(count(a), 1, () => direct(curl(a.port)), "curl A directly");
            await assertCount(count(b), 1, () => direct(curl(b.port)), "curl B directly");
            await assertCount(count(a), 1, () => sandboxed(curl(a.port)), "curl A");
            const out = await assertCount(count(b), 0, () => sandboxed(curl(b.port)), "curl B");
            assertRanAndFailed(out, "curl to B");
            assert.equal(out.code, 7, `curl: could not connect: ${out.stderr}`);
          },
        });
      }
    } finally {
      await a.close();
      await b.close();
    }
  },
});

Deno.test({
  name: skipReason("with a TCP port open, a UDP datagram is not sent", MISSING),
  ignore: !!MISSING,
  async fn(t) {
    const udp = await DatagramCounter.open("127.0.0.1", 0);
    const port = udp.address.port;
    const count = () => udp.settle();
    try {
      await t.step("positive control: sent without the sandbox", async () => {
        const out = await assertCount(count, 1, () => direct(py(UDP_PY, port)), "UDP directly");
        assert.equal(out.stdout, "sent\n");
      });
      for (const mode of MODES) {
        await t.step(`${mode.name}: refused (EPERM)`, async () => {
          const out = await assertCount(
            count,
            0,
            () =>
              runCli([
                ...mode.flags,
                "-s",
                `network-connect-tcp=${port}`,
                "--",
                ...py(UDP_PY, port),
              ]),
            "UDP in the sandbox",
          );
          assertErrno(out, EPERM, "UDP sendto");
        });
      }
    } finally {
      await udp.close();
    }
  },
});

Deno.test({
  name: skipReason("with a TCP port open, a pathname UNIX socket is not reached", MISSING),
  ignore: !!MISSING,
  async fn(t) {
    const dir = tempDir();
    const path = `${dir}/listener.sock`;
    const listener = ConnectionCounter.unix(path);
    const count = () => listener.settle();
    const tcpPort = freePort();
    try {
      await t.step("positive control: reached without the sandbox", async () => {
        const out = await assertCount(count, 1, () => direct(py(UNIX_PY, path)), "directly");
        assert.equal(out.stdout, "connected\n");
      });
      for (const mode of MODES) {
        await t.step(
          `${mode.name}: positive control: reached with network-unix-sockets`,
          async () => {
            const out = await assertCount(
              count,
              1,
              () =>
                runCli([...mode.flags, "-s", "network-unix-sockets", "--", ...py(UNIX_PY, path)]),
              "with network-unix-sockets",
            );
            assert.equal(out.stdout, "connected\n", out.stderr);
          },
        );
        await t.step(`${mode.name}: socket(AF_UNIX) refused with network-connect-tcp`, async () => {
          const out = await assertCount(
            count,
            0,
            () =>
              runCli([
                ...mode.flags,
                "-s",
                `network-connect-tcp=${tcpPort}`,
                "--",
                ...py(UNIX_PY, path),
              ]),
            "with network-connect-tcp",
          );
          assertErrno(out, EPERM, "AF_UNIX connect");
        });
        await t.step(`${mode.name}: an AF_UNIX socketpair still works`, async () => {
          const out = await runCli([
            ...mode.flags,
            "-s",
            `network-connect-tcp=${tcpPort}`,
            "--",
            ...py(SOCKETPAIR_PY),
          ]);
          assert.equal(out.code, 0, out.stderr);
          assert.equal(out.stdout, "ping\n");
        });
      }
    } finally {
      await listener.close();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: skipReason("network-bind-tcp=P listens on P, reached from outside; no other port", MISSING),
  ignore: !!MISSING,
  async fn(t) {
    for (const mode of MODES) {
      await t.step(`${mode.name}: python3 serves on P`, async () => {
        const port = freePort();
        const server = new Coprocess(
          Deno.execPath(),
          cliCommand([
            ...mode.flags,
            "-s",
            `network-bind-tcp=${port}`,
            "--",
            ...py(SERVER_PY, port),
          ])
            .slice(1),
        );
        try {
          assert.equal(await server.readLine(), "ready", "the server bound and listens on P");
          await server.writeLine("count");
          assert.equal(await server.readLine(), "0");
          const conn = await Deno.connect({ hostname: "127.0.0.1", port });
          conn.close();
          await server.writeLine("count");
          assert.equal(await server.readLine(), "1", "the test's connection was accepted");
        } finally {
          await server.close();
        }
      });
      await t.step(`${mode.name}: binding another port fails (EACCES)`, async () => {
        const allowed = freePort();
        const other = freePort();
        const control = await direct(py(BIND_PY, other));
        assert.equal(
          control.stdout,
          "bound\n",
          `positive control: bound directly: ${control.stderr}`,
        );
        const out = await runCli([
          ...mode.flags,
          "-s",
          `network-bind-tcp=${allowed}`,
          "--",
          ...py(BIND_PY, other),
        ]);
        assertErrno(out, EACCES, "bind to another port");
        const same = await runCli([
          ...mode.flags,
          "-s",
          `network-bind-tcp=${allowed}`,
          "--",
          ...py(BIND_PY, allowed),
        ]);
        assert.equal(same.stdout, "bound\n", `the allowed port binds: ${same.stderr}`);
      });
    }
  },
});

Deno.test({
  name: skipReason("with a TCP port open, MPTCP and SCTP sockets are refused", MISSING),
  ignore: !!MISSING,
  async fn(t) {
    const port = freePort();
    const protocols = [{ name: "MPTCP", number: 262 }, { name: "SCTP", number: 132 }];
    await t.step("positive control: outside, no EPERM (created, or unsupported here)", async () => {
      for (const { name, number } of protocols) {
        const out = await direct(py(SOCKET_PY, number));
        assert.notEqual(out.stdout.trim(), `errno ${EPERM}`, `${name}: ${out.stdout}`);
      }
    });
    for (const mode of MODES) {
      const sandboxed = (number: number) =>
        runCli([
          ...mode.flags,
          "-s",
          `network-connect-tcp=${port}`,
          "--",
          ...py(SOCKET_PY, number),
        ]);
      await t.step(`${mode.name}: refused (EPERM)`, async () => {
        for (const { name, number } of protocols) {
          assertErrno(await sandboxed(number), EPERM, `${name} socket`);
        }
      });
      await t.step(`${mode.name}: positive control: TCP sockets, protocol 0 and 6`, async () => {
        for (const number of [0, 6]) {
          const out = await sandboxed(number);
          assert.equal(out.stdout, "created\n", `protocol ${number}: ${out.stderr}`);
        }
      });
    }
  },
});

const TFO_SYSCTL = (() => {
  try {
    return Number(Deno.readTextFileSync("/proc/sys/net/ipv4/tcp_fastopen").trim());
  } catch {
    return 0;
  }
})();
const NO_CLIENT_TFO = (TFO_SYSCTL & 1) === 0
  ? `net.ipv4.tcp_fastopen is ${TFO_SYSCTL}: client TCP Fast Open is disabled`
  : undefined;

Deno.test({
  name: skipReason("with a TCP port open, TCP Fast Open cannot connect to another port", MISSING),
  ignore: !!MISSING,
  async fn(t) {
    const a = freePort();
    const b = ConnectionCounter.tcp();
    const count = () => b.settle();
    try {
      for (const how of ["sendto", "sendmsg"]) {
        await t.step({
          name: skipReason(
            `positive control: ${how} with MSG_FASTOPEN connects outside`,
            NO_CLIENT_TFO,
          ),
          ignore: !!NO_CLIENT_TFO,
          async fn() {
            const out = await assertCount(count, 1, () => direct(py(TFO_PY, how, b.port)), how);
            assert.equal(out.stdout, "sent\n", out.stderr);
          },
        });
        for (const mode of MODES) {
          await t.step(`${mode.name}: ${how} with MSG_FASTOPEN refused (EPERM)`, async () => {
            const out = await assertCount(
              count,
              0,
              () =>
                runCli([
                  ...mode.flags,
                  "-s",
                  `network-connect-tcp=${a}`,
                  "--",
                  ...py(TFO_PY, how, b.port),
                ]),
              how,
            );
            assertErrno(out, EPERM, `${how} MSG_FASTOPEN`);
          });
        }
      }
    } finally {
      await b.close();
    }
  },
});
