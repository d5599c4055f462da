// Red team, the network: every way out that a sandboxed socket could take, against listeners
// this test started on loopback or in a temporary folder. Each is shown to reach its listener
// first, directly and through the harness with no layer; then refused by each layer that can
// stop it on its own. The tools users run (curl, ssh, ping...) are in tests/network_test.ts.

import assert from "node:assert/strict";
import { SandboxPolicy } from "../../policy/sandbox_policy.ts";
import { exists, MAIN, run as runCommand, tempDir, which } from "../_helpers.ts";
import { ConnectionCounter, DatagramCounter, PYTHON, UnixCounter } from "../_net.ts";
import {
  assertLayers,
  firstReason,
  landlockBelow,
  NO_GCC,
  NOT_ROOT,
  threatTest,
} from "./_redteam.ts";

const POLICY = new SandboxPolicy([]);
const NO_PYTHON = PYTHON ? undefined : "python3 not installed (the UNIX listeners)";
const LANDLOCK_TCP = landlockBelow(4);

threatTest("tcp-connect", NO_GCC, async (t) => {
  const listener = ConnectionCounter.tcp();
  try {
    await assertLayers(t, {
      policy: POLICY,
      args: ["tcp-connect", String(listener.port)],
      worked: "connected",
      count: () => listener.settle(),
      denials: [
        { layers: ["landlock"], refused: "connect EACCES", skip: LANDLOCK_TCP },
        { layers: ["seccomp"], refused: "socket EPERM" },
        { layers: "all", refused: "socket EPERM" },
      ],
    });
  } finally {
    await listener.close();
  }
});

threatTest("tcp-bind", NO_GCC, async (t) => {
  await assertLayers(t, {
    policy: POLICY,
    args: ["tcp-listen"],
    worked: "listening",
    denials: [
      { layers: ["landlock"], refused: "bind EACCES", skip: LANDLOCK_TCP },
      { layers: ["seccomp"], refused: "socket EPERM" },
      { layers: "all", refused: "socket EPERM" },
    ],
  });
});

threatTest("packet-full-network", firstReason(NO_GCC, NOT_ROOT), async (t) => {
  // The network is granted: seccomp lets every socket through, only capabilities stand.
  await assertLayers(t, {
    policy: new SandboxPolicy(["network-full-access"]),
    args: ["packet"],
    worked: "created",
    denials: [
      { layers: ["capabilities"], refused: "socket EPERM" },
      { layers: "all", refused: "socket EPERM" },
    ],
  });
});

threatTest("udp", NO_GCC, async (t) => {
  const listener = await DatagramCounter.open("127.0.0.1", 0);
  try {
    await assertLayers(t, {
      policy: POLICY,
      args: ["udp-send", String(listener.address.port)],
      worked: "sent",
      count: () => listener.settle(),
      denials: [
        { layers: ["seccomp"], refused: "socket EPERM" },
        { layers: "all", refused: "socket EPERM" },
      ],
    });
  } finally {
    await listener.close();
  }
});

threatTest("netlink", NO_GCC, async (t) => {
  await assertLayers(t, {
    policy: POLICY,
    args: ["netlink"],
    worked: "created",
    denials: [
      { layers: ["seccomp"], refused: "socket EPERM" },
      { layers: "all", refused: "socket EPERM" },
    ],
  });
});

threatTest("packet", firstReason(NO_GCC, NOT_ROOT), async (t) => {
  await assertLayers(t, {
    policy: POLICY,
    args: ["packet"],
    worked: "created",
    denials: [
      { layers: ["seccomp"], refused: "socket EPERM" },
      { layers: ["capabilities"], refused: "socket EPERM" },
      { layers: "all", refused: "socket EPERM" },
    ],
  });
});

/** A UNIX listener of the given kind in a fresh folder, for one case. */
async function withUnixListener(
  kind: "dgram" | "stream",
  fn: (path: string, count: () => Promise<number>) => Promise<void>,
): Promise<void> {
  const dir = tempDir();
  const path = `${dir}/${kind}.sock`;
  const listener = kind === "stream"
    ? ConnectionCounter.unix(path)
    : await UnixCounter.open(PYTHON!, "dgram", path);
  try {
    await fn(path, () => listener.settle());
  } finally {
    await listener.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

threatTest("unix-dgram", firstReason(NO_GCC, NO_PYTHON), async (t) => {
  await withUnixListener("dgram", (path, count) =>
    assertLayers(t, {
      policy: POLICY,
      args: ["unix-dgram", path],
      worked: "sent",
      count,
      denials: [
        { layers: ["seccomp"], refused: "socket EPERM" },
        { layers: "all", refused: "socket EPERM" },
      ],
    }));
});

threatTest("unix-dgram-pair", firstReason(NO_GCC, NO_PYTHON), async (t) => {
  await withUnixListener("dgram", (path, count) =>
    assertLayers(t, {
      policy: POLICY,
      args: ["unix-dgram-pair", path],
      worked: "sent",
      count,
      denials: [
        { layers: ["seccomp"], refused: "socketpair EPERM" },
        { layers: "all", refused: "socketpair EPERM" },
      ],
    }));
});

threatTest("unix-stream", NO_GCC, async (t) => {
  await withUnixListener("stream", (path, count) =>
    assertLayers(t, {
      policy: POLICY,
      args: ["unix-stream", path],
      worked: "connected",
      count,
      denials: [
        { layers: ["seccomp"], refused: "connect EPERM" },
        { layers: "all", refused: "connect EPERM" },
      ],
    }));
});

threatTest("unix-abstract", firstReason(NO_GCC, NO_PYTHON), async (t) => {
  const name = `llmx-redteam-${Deno.pid}-${crypto.randomUUID()}`;
  const listener = await UnixCounter.open(PYTHON!, "abstract", name);
  try {
    await assertLayers(t, {
      policy: POLICY,
      args: ["unix-abstract", name],
      worked: "connected",
      count: () => listener.settle(),
      denials: [
        { layers: ["landlock"], refused: "connect EPERM", skip: landlockBelow(6) },
        { layers: ["seccomp"], refused: "connect EPERM" },
        { layers: "all", refused: "connect EPERM" },
      ],
    });
  } finally {
    await listener.close();
  }
});

threatTest("io-uring", NO_GCC, async (t) => {
  const listener = ConnectionCounter.tcp();
  try {
    await assertLayers(t, {
      policy: POLICY,
      args: ["io-uring-connect", String(listener.port)],
      worked: "connected",
      count: () => listener.settle(),
      denials: [
        // The ring opens the socket (Landlock does not restrict socket creation), and the
        // connection it makes for the command passes Landlock's TCP hook like connect(2) does.
        { layers: ["landlock"], refused: "IORING_OP_CONNECT EACCES", skip: LANDLOCK_TCP },
        { layers: ["seccomp"], refused: "io_uring_setup EPERM" },
        { layers: "all", refused: "io_uring_setup EPERM" },
      ],
    });
  } finally {
    await listener.close();
  }
});

threatTest("listen-unbound", firstReason(NO_GCC, LANDLOCK_TCP), async (t) => {
  // A port is granted; the command listens without binding it (or any port) first.
  const granted = ConnectionCounter.tcp();
  const port = granted.port;
  await granted.close();
  await assertLayers(t, {
    policy: new SandboxPolicy([`network-bind-tcp=${port}`]),
    args: ["listen-unbound"],
    worked: "listening [0-9]+",
    denials: [
      // seccomp hands listen() to the supervisor, which looks at the socket: never bound.
      { layers: ["seccomp"], refused: "listen EACCES" },
      { layers: "all", refused: "listen EACCES" },
    ],
  });
});

threatTest("unix-full-network", firstReason(NO_GCC, NO_PYTHON), async (t) => {
  const policy = new SandboxPolicy(["network-full-access"]);
  await t.step("a daemon's socket path", async (t) => {
    await withUnixListener("stream", (path, count) =>
      assertLayers(t, {
        policy,
        args: ["unix-stream", path],
        worked: "connected",
        count,
        denials: [
          { layers: ["seccomp"], refused: "socket EPERM" },
          { layers: "all", refused: "socket EPERM" },
        ],
      }));
  });
  await t.step("an abstract name", async (t) => {
    const name = `llmx-redteam-${Deno.pid}-${crypto.randomUUID()}`;
    const listener = await UnixCounter.open(PYTHON!, "abstract", name);
    try {
      await assertLayers(t, {
        policy,
        args: ["unix-abstract", name],
        worked: "connected",
        count: () => listener.settle(),
        denials: [
          { layers: ["landlock"], refused: "connect EPERM", skip: landlockBelow(6) },
          { layers: ["seccomp"], refused: "socket EPERM" },
          { layers: "all", refused: "socket EPERM" },
        ],
      });
    } finally {
      await listener.close();
    }
  });
});

threatTest(
  "proxy-other-user",
  firstReason(NOT_ROOT, landlockBelow(4), which("setpriv") ? undefined : "setpriv not installed"),
  async (t) => {
    // The run: a command that publishes its proxy's address, then waits.
    const origin = ConnectionCounter.tcp();
    const dir = tempDir();
    Deno.chmodSync(dir, 0o755);
    const published = `${dir}/proxy`;
    const run = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        MAIN,
        "-q",
        "-s",
        `network-domain=127.0.0.1:${origin.port}`,
        "-s",
        `disk-write-folder=${dir}`,
        "--",
        "sh",
        "-c",
        `echo "$HTTP_PROXY" > ${published}.tmp && mv ${published}.tmp ${published} && sleep 60`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      while (!exists(published)) await new Promise((resolve) => setTimeout(resolve, 20));
      const proxy = new URL(Deno.readTextFileSync(published).trim());
      // A CONNECT through the proxy, from a socket of the given uid.
      const connectAs = (uid: number) =>
        runCommand("setpriv", [
          `--reuid=${uid}`,
          `--regid=${uid}`,
          "--clear-groups",
          PYTHON ?? "python3",
          "-c",
          `import socket; s = socket.create_connection(("127.0.0.1", ${proxy.port}))
s.sendall(b"CONNECT 127.0.0.1:${origin.port} HTTP/1.1\\r\\n\\r\\n")
print(s.recv(64).decode().split("\\r\\n")[0] or "no answer")`,
        ]);
      await t.step("positive control: the command's own uid gets through", async () => {
        const out = await connectAs(0);
        assert.match(out.stdout, /^HTTP\/1\.1 200/, out.stderr);
        assert.equal(await origin.settle(), 1);
      });
      await t.step("another uid: no answer, the origin is not reached", async () => {
        const out = await connectAs(65534);
        assert.equal(out.stdout.trim(), "no answer", out.stderr);
        assert.equal(await origin.settle(), 1);
      });
    } finally {
      run.kill("SIGKILL");
      await run.status;
      await origin.close();
      Deno.removeSync(dir, { recursive: true });
    }
  },
);
