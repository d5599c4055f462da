// End to end: AF_UNIX inside the sandbox. What stays inside the process tree works (socketpair
// IPC, asyncio's self-pipe, Node's child processes); what reaches a socket outside (a path or an
// abstract name someone else bound) does not, with network-full-access neither. Every denial
// first shows the same send or connect reaching a listener this test started, directly and with
// network-unix-sockets.

import assert from "node:assert/strict";
import { MODES, runCli, skipReason, tempDir, which } from "./_helpers.ts";
import { assertCannotReach, ConnectionCounter, PYTHON, UnixCounter } from "./_net.ts";

const NO_PYTHON = PYTHON ? undefined : "python3 not installed";
// Deno puts its own `node` shim on PATH when there is no Node.js; that is not Node.
const NODE_FOUND = which("node");
const NODE = NODE_FOUND && !Deno.realPathSync(NODE_FOUND).endsWith("/deno")
  ? NODE_FOUND
  : undefined;

Deno.test({
  name: skipReason("AF_UNIX socketpair IPC works inside the sandbox", NO_PYTHON),
  ignore: !!NO_PYTHON,
  async fn(t) {
    const script = `
import socket
a, b = socket.socketpair()
a.sendall(b"ping")
print(socket.AddressFamily(a.family).name, b.recv(4).decode())
`;
    for (const mode of MODES) {
      await t.step(mode.name, async () => {
        const out = await runCli([...mode.flags, "--", PYTHON!, "-c", script]);
        assert.equal(out.code, 0, out.stderr);
        assert.equal(out.stdout, "AF_UNIX ping\n");
      });
    }
  },
});

Deno.test({
  name: skipReason(
    "Python asyncio runs a subprocess and socket I/O inside the sandbox",
    NO_PYTHON,
  ),
  ignore: !!NO_PYTHON,
  async fn(t) {
    // asyncio.run makes a socketpair for the event loop's self-pipe before anything else.
    const script = `
import asyncio, socket
async def main():
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    await loop.sock_sendall(a, b"ping")
    received = await loop.sock_recv(b, 4)
    child = await asyncio.create_subprocess_exec("echo", "hi", stdout=asyncio.subprocess.PIPE)
    out, _ = await child.communicate()
    print(received.decode(), out.decode().strip(), child.returncode)
asyncio.run(main())
`;
    for (const mode of MODES) {
      await t.step(mode.name, async () => {
        const out = await runCli([...mode.flags, "--", PYTHON!, "-c", script]);
        assert.equal(out.code, 0, out.stderr);
        assert.equal(out.stdout, "ping hi 0\n");
      });
    }
  },
});

Deno.test({
  name: skipReason(
    "Node child_process.spawnSync works inside the sandbox",
    NODE ? undefined : "node (Node.js) not installed",
  ),
  ignore: !NODE,
  async fn(t) {
    const script = "const r = require('child_process').spawnSync('echo', ['hi']);" +
      "if (r.error) throw r.error;" +
      "process.stdout.write(r.stdout);" +
      "process.exitCode = r.status;";
    for (const mode of MODES) {
      await t.step(mode.name, async () => {
        const out = await runCli([...mode.flags, "--", NODE!, "-e", script]);
        assert.equal(out.code, 0, out.stderr);
        assert.equal(out.stdout, "hi\n");
      });
    }
  },
});

// Sends a datagram to, or connects to, a UNIX socket; prints "reached" or the errno's name.
const CLIENT_PY = `
import errno, socket, sys
kind, name = sys.argv[1], sys.argv[2]
try:
    if kind == "dgram":
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"x", name)
    elif kind == "dgram-pair":
        # A connected datagram pair still sends to any address given to sendmsg.
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        a.sendmsg([b"x"], [], 0, name)
    else:
        address = "\\0" + name if kind == "abstract" else name
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(address)
except OSError as error:
    print("refused", errno.errorcode.get(error.errno, error.errno))
    sys.exit(1)
print("reached")
`;

const client = (kind: string, name: string) => [PYTHON!, "-c", CLIENT_PY, kind, name];
const printedReached = (out: { stdout: string }) => assert.equal(out.stdout, "reached\n");

Deno.test({
  name: skipReason(
    "an AF_UNIX datagram cannot reach a pathname socket outside the sandbox",
    NO_PYTHON,
  ),
  ignore: !!NO_PYTHON,
  async fn(t) {
    const dir = tempDir();
    const path = `${dir}/dgram.sock`;
    const listener = await UnixCounter.open(PYTHON!, "dgram", path);
    try {
      await assertCannotReach(t, {
        command: client("dgram", path),
        count: () => listener.settle(),
        reached: printedReached,
        grant: "network-unix-sockets",
        notGrantedBy: ["network-full-access"],
      });
    } finally {
      await listener.close();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: skipReason(
    "an AF_UNIX datagram socketpair cannot send to a pathname socket outside the sandbox",
    NO_PYTHON,
  ),
  ignore: !!NO_PYTHON,
  async fn(t) {
    const dir = tempDir();
    const path = `${dir}/dgram.sock`;
    const listener = await UnixCounter.open(PYTHON!, "dgram", path);
    try {
      await assertCannotReach(t, {
        command: client("dgram-pair", path),
        count: () => listener.settle(),
        reached: printedReached,
        grant: "network-unix-sockets",
        notGrantedBy: ["network-full-access"],
      });
    } finally {
      await listener.close();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: skipReason(
    "an AF_UNIX stream socket cannot connect to a pathname listener outside the sandbox",
    NO_PYTHON,
  ),
  ignore: !!NO_PYTHON,
  async fn(t) {
    const dir = tempDir();
    const path = `${dir}/stream.sock`;
    const listener = ConnectionCounter.unix(path);
    try {
      await assertCannotReach(t, {
        command: client("stream", path),
        count: () => listener.settle(),
        reached: printedReached,
        grant: "network-unix-sockets",
        notGrantedBy: ["network-full-access"],
      });
    } finally {
      await listener.close();
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: skipReason(
    "an AF_UNIX stream socket cannot connect to an abstract-namespace listener outside the sandbox",
    NO_PYTHON,
  ),
  ignore: !!NO_PYTHON,
  async fn(t) {
    const name = `llmx-sandbox-test-${Deno.pid}-${crypto.randomUUID()}`;
    const listener = await UnixCounter.open(PYTHON!, "abstract", name);
    try {
      await assertCannotReach(t, {
        command: client("abstract", name),
        count: () => listener.settle(),
        reached: printedReached,
        grant: "network-unix-sockets",
        notGrantedBy: ["network-full-access"],
      });
    } finally {
      await listener.close();
    }
  },
});
