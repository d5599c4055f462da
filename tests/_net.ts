// Private to the network tests: loopback listeners that count who reached them, and the checks
// every "no network" case shares. Only listeners these tests start are ever contacted.

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { MAIN, MODES, type Output, run, runCli, tempDir, which } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Exit codes that mean the CLI, not the command, ended the run (timeout, sandbox, exec). */
const NOT_THE_COMMAND = [124, 125, 126, 127];

/**
 * Asserts that the command itself ran and failed: a refused run must not be confused with a
 * sandbox that could not start, a missing program or a timeout, which also exit non-zero (the
 * CLI's own messages, warnings and hints aside, start with "llmx-sandbox: ").
 * @param out What the run left.
 * @param what The command, for messages.
 */
export function assertRanAndFailed(out: Output, what: string): void {
  assert.notEqual(out.code, 0, `${what} must fail inside the sandbox: ${out.stdout}`);
  assert.ok(
    !NOT_THE_COMMAND.includes(out.code) &&
      !/^llmx-sandbox: (?!warning:|hint:|note:)/m.test(out.stderr),
    `${what} must have been run and failed by itself (code ${out.code}): ${out.stderr}`,
  );
}

/**
 * A stream listener (TCP or UNIX) that counts accepted connections. A count is read with
 * `settle()`, which first connects a sentinel and waits until the accept loop has taken it:
 * the accept queue is first in, first out, so every connection made before has been counted.
 */
export class ConnectionCounter {
  readonly #listener: Deno.Listener;
  readonly #loop: Promise<void>;
  readonly #open = new Set<Deno.Conn>();
  readonly #handlers = new Set<Promise<void>>();
  readonly #sentinels = new Map<string, () => void>();
  #accepted = 0;
  #sentinelsSeen = 0;
  #serial = 0;

  /** @param listener A listener this test just started; the counter owns it from now on. */
  constructor(listener: Deno.Listener) {
    this.#listener = listener;
    this.#loop = this.#acceptLoop();
  }

  /** A counter on a fresh TCP listener on 127.0.0.1 and a port the kernel picks. */
  static tcp(): ConnectionCounter {
    return new ConnectionCounter(Deno.listen({ hostname: "127.0.0.1", port: 0 }));
  }

  /** A counter on a fresh UNIX stream listener at `path`. */
  static unix(path: string): ConnectionCounter {
    return new ConnectionCounter(Deno.listen({ transport: "unix", path }));
  }

  /** The TCP port (TCP listeners only). */
  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  async #acceptLoop(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        this.#accepted++;
        this.#open.add(conn);
        const handler = this.#handle(conn);
        this.#handlers.add(handler);
        handler.finally(() => this.#handlers.delete(handler));
      }
    } catch {
      // The listener was closed.
    }
  }

  // Reads once (a sentinel says its token; other clients send a request, a banner or nothing
  // and close), then hangs up: no client here is ever answered.
  async #handle(conn: Deno.Conn): Promise<void> {
    try {
      const buffer = new Uint8Array(256);
      const n = await conn.read(buffer);
      const wake = n === null
        ? undefined
        : this.#sentinels.get(decoder.decode(buffer.subarray(0, n)));
      if (wake) {
        this.#sentinelsSeen++;
        wake();
      }
    } catch {
      // Reset by the client, or closed by close().
    } finally {
      if (this.#open.delete(conn)) conn.close();
    }
  }

  /** Waits until every connection made so far is accepted, and returns how many there were. */
  async settle(): Promise<number> {
    const token = `llmx-test-sentinel-${this.#serial++}`;
    const seen = Promise.withResolvers<void>();
    this.#sentinels.set(token, seen.resolve);
    const addr = this.#listener.addr;
    const conn = addr.transport === "unix"
      ? await Deno.connect({ transport: "unix", path: addr.path })
      : await Deno.connect({ hostname: "127.0.0.1", port: (addr as Deno.NetAddr).port });
    try {
      await conn.write(encoder.encode(token));
      await seen.promise;
    } finally {
      this.#sentinels.delete(token);
      conn.close();
    }
    return this.#accepted - this.#sentinelsSeen;
  }

  /** Stops listening and hangs up every connection, leaving nothing pending. */
  async close(): Promise<void> {
    this.#listener.close();
    await this.#loop;
    for (const conn of this.#open) {
      this.#open.delete(conn);
      conn.close();
    }
    await Promise.all([...this.#handlers]);
  }
}

/**
 * A UDP socket on loopback that counts datagrams, optionally answering each. `settle()` sends
 * a sentinel datagram and waits for it, like `ConnectionCounter.settle()`.
 */
export class DatagramCounter {
  readonly #socket: dgram.Socket;
  readonly #sentinels = new Map<string, () => void>();
  #received = 0;
  #serial = 0;

  private constructor(
    socket: dgram.Socket,
    answer?: (message: Uint8Array) => Uint8Array | undefined,
  ) {
    this.#socket = socket;
    socket.on("message", (message: Uint8Array, from: { address: string; port: number }) => {
      const wake = this.#sentinels.get(decoder.decode(message));
      if (wake) return wake();
      this.#received++;
      const reply = answer?.(message);
      if (reply) socket.send(reply, from.port, from.address);
    });
  }

  /**
   * Binds a UDP socket.
   * @param hostname A loopback address.
   * @param port The port, 0 for one the kernel picks.
   * @param answer What to send back to a datagram, if anything.
   * @returns The counter; rejects when the address is taken.
   */
  static open(
    hostname: string,
    port: number,
    answer?: (message: Uint8Array) => Uint8Array | undefined,
  ): Promise<DatagramCounter> {
    const socket = dgram.createSocket("udp4");
    return new Promise((resolve, reject) => {
      socket.once("error", (error: Error) => {
        socket.close();
        reject(error);
      });
      socket.bind(port, hostname, () => {
        socket.removeAllListeners("error");
        resolve(new DatagramCounter(socket, answer));
      });
    });
  }

  /** The bound address. */
  get address(): { address: string; port: number } {
    return this.#socket.address();
  }

  /** Waits until every datagram sent so far has arrived, and returns how many there were. */
  async settle(): Promise<number> {
    const token = `llmx-test-sentinel-${this.#serial++}`;
    const seen = Promise.withResolvers<void>();
    this.#sentinels.set(token, seen.resolve);
    const sender = dgram.createSocket("udp4");
    try {
      const { address, port } = this.address;
      await new Promise<void>((resolve, reject) =>
        sender.send(
          token,
          port,
          address,
          (error: Error | null) => error ? reject(error) : resolve(),
        )
      );
      await seen.promise;
    } finally {
      this.#sentinels.delete(token);
      await new Promise<void>((resolve) => sender.close(() => resolve()));
    }
    return this.#received;
  }

  /** Closes the socket. */
  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}

/**
 * A DNS answer to a query: the question echoed, and for an A question one record with
 * `address`; any other question gets "no data". Enough for glibc's stub resolver.
 * @param query The query datagram.
 * @param address The IPv4 address to answer with.
 * @returns The answer, or `undefined` for something that is not a query.
 */
export function dnsAnswer(query: Uint8Array, address: readonly number[]): Uint8Array | undefined {
  if (query.length < 12 || (query[2] & 0x80) !== 0) return undefined;
  let at = 12;
  while (at < query.length && query[at] !== 0) at += query[at] + 1;
  const questionEnd = at + 5;
  if (questionEnd > query.length) return undefined;
  const isA = query[at + 1] === 0 && query[at + 2] === 1;
  // QR, RD, RA, NOERROR; one question; one answer for A, none otherwise.
  const header = [query[0], query[1], 0x81, 0x80, 0, 1, 0, isA ? 1 : 0, 0, 0, 0, 0];
  // Name: a pointer to the question's; type A, class IN, TTL 60, four bytes of address.
  const answer = isA ? [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...address] : [];
  return Uint8Array.from([...header, ...query.subarray(12, questionEnd), ...answer]);
}

/** ICMP echo requests this network namespace has received (`Icmp: InEchos` in /proc/net/snmp). */
export function icmpEchoRequests(): number {
  const lines = Deno.readTextFileSync("/proc/net/snmp").split("\n").filter((line) =>
    line.startsWith("Icmp: ")
  );
  const names = lines[0].split(/\s+/);
  const values = lines[1].split(/\s+/);
  const index = names.indexOf("InEchos");
  assert.ok(index > 0, "/proc/net/snmp has an Icmp InEchos counter");
  return Number(values[index]);
}

/** The real Python interpreter (not a version manager's shim), or `undefined`. */
export const PYTHON: string | undefined = (() => {
  const shim = which("python3");
  if (!shim) return undefined;
  const out = new Deno.Command(shim, {
    args: ["-c", "import sys; print(sys.executable)"],
    stdout: "piped",
    stderr: "null",
  }).outputSync();
  const path = decoder.decode(out.stdout).trim();
  return out.success && path ? path : undefined;
})();

// Binds an AF_UNIX socket, says "ready", then on each line read from stdin takes everything
// waiting (datagrams, or connections) without blocking and prints the running total. Sends and
// connects to a UNIX socket are queued on it before the sender's syscall returns, so a total
// read after the sender exited is exact.
const UNIX_COUNTER_PY = `
import socket, sys
kind, name = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM if kind == "dgram" else socket.SOCK_STREAM)
s.bind("\\0" + name if kind == "abstract" else name)
if kind != "dgram":
    s.listen(64)
s.setblocking(False)
total = 0
print("ready", flush=True)
while sys.stdin.readline():
    while True:
        try:
            if kind == "dgram":
                s.recv(65536)
            else:
                s.accept()[0].close()
        except BlockingIOError:
            break
        total += 1
    print(total, flush=True)
`;

/** A helper process this test talks to a line at a time, on its stdin and stdout. */
export class Coprocess {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stdout: ReadableStreamDefaultReader<string>;
  #buffered = "";

  /**
   * Starts the process; its stderr goes to the test's.
   * @param program The program.
   * @param args Its arguments.
   */
  constructor(program: string, args: readonly string[]) {
    this.#child = new Deno.Command(program, {
      args: [...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#stdout = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next line it prints, without the newline; `undefined` at the end. */
  async readLine(): Promise<string | undefined> {
    while (!this.#buffered.includes("\n")) {
      const { value, done } = await this.#stdout.read();
      if (done) return undefined;
      this.#buffered += value;
    }
    const end = this.#buffered.indexOf("\n");
    const line = this.#buffered.slice(0, end);
    this.#buffered = this.#buffered.slice(end + 1);
    return line;
  }

  /** Sends it a line. */
  async writeLine(line: string): Promise<void> {
    await this.#stdin.write(encoder.encode(`${line}\n`));
  }

  /** Ends its stdin and waits for it to finish. */
  async close(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    while (await this.readLine() !== undefined) {
      // Drain to the end.
    }
    this.#stdout.releaseLock();
    await this.#child.status;
  }
}

/** A UNIX socket bound by a Python process, counting datagrams or connections. */
export class UnixCounter {
  readonly #process: Coprocess;

  private constructor(process: Coprocess) {
    this.#process = process;
  }

  /**
   * Starts the listener.
   * @param python The interpreter.
   * @param kind A datagram socket at a path, a stream listener at a path, or a stream listener
   * at an abstract name.
   * @param name The path, or the abstract name without its leading NUL.
   * @returns The counter, once bound.
   */
  static async open(
    python: string,
    kind: "dgram" | "stream" | "abstract",
    name: string,
  ): Promise<UnixCounter> {
    const process = new Coprocess(python, ["-c", UNIX_COUNTER_PY, kind, name]);
    if (await process.readLine() !== "ready") {
      await process.close();
      throw new Error(`The UNIX ${kind} listener at ${JSON.stringify(name)} did not start`);
    }
    return new UnixCounter(process);
  }

  /** How many datagrams or connections arrived so far. */
  async settle(): Promise<number> {
    await this.#process.writeLine("count");
    const line = await this.#process.readLine();
    assert.match(line ?? "", /^[0-9]+$/, "the UNIX listener answers with a count");
    return Number(line);
  }

  /** Stops the listener and waits for it. */
  close(): Promise<void> {
    return this.#process.close();
  }
}

/**
 * Why a private mount namespace with our own /etc/resolv.conf cannot be made here, or
 * `undefined` when it can.
 */
export const PRIVATE_RESOLV_CONF_UNAVAILABLE: string | undefined = (() => {
  for (const tool of ["unshare", "mount", "sh"]) {
    if (!which(tool)) return `${tool} is not installed`;
  }
  const dir = tempDir();
  try {
    const file = `${dir}/resolv.conf`;
    const content = "# llmx-sandbox test probe\n";
    Deno.writeTextFileSync(file, content);
    const out = new Deno.Command("unshare", {
      args: [...privateResolvConf(file), "cat", "/etc/resolv.conf"],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    if (decoder.decode(out.stdout) === content) return undefined;
    return `cannot bind-mount /etc/resolv.conf in a private mount namespace: ${
      decoder.decode(out.stderr).trim() || `exit code ${out.code}`
    }`;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
})();

/**
 * The arguments to `unshare` that run a command in a private mount namespace where
 * /etc/resolv.conf is `resolvConf`; nothing outside the namespace changes.
 * @param resolvConf The file to mount over /etc/resolv.conf.
 * @returns Arguments to put before the command.
 */
export function privateResolvConf(resolvConf: string): string[] {
  return [
    "-m",
    "--propagation",
    "private",
    "sh",
    "-c",
    'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"',
    "sh",
    resolvConf,
  ];
}

/** The CLI's command line (`deno run -A main.ts ARGS`), to run under another program. */
export function cliCommand(args: readonly string[]): string[] {
  return [Deno.execPath(), "run", "--allow-all", "--quiet", MAIN, ...args];
}

/** Runs `command` in a private mount namespace with `resolvConf` as /etc/resolv.conf. */
export function runWithResolvConf(resolvConf: string, command: readonly string[]): Promise<Output> {
  return run("unshare", [...privateResolvConf(resolvConf), ...command]);
}

/** How a case runs its command: directly, and under the CLI with some arguments. */
export interface Launcher {
  /** Runs the command without the sandbox. */
  direct(command: readonly string[]): Promise<Output>;
  /** Runs the CLI with these arguments (options, `--`, the command). */
  cli(args: readonly string[]): Promise<Output>;
}

/** Runs commands as they are. */
export const PLAIN: Launcher = {
  direct: (command) => run(command[0], command.slice(1)),
  cli: (args) => runCli(args),
};

/** What a "cannot reach" case needs. */
export interface ReachCase {
  /** The command that reaches the listener. */
  command: readonly string[];
  /** Reads the listener's count once everything sent so far has arrived. */
  count(): Promise<number>;
  /** How to run it. @default PLAIN */
  launcher?: Launcher;
  /** Other CLI options given in (2) and (3), e.g. `--full-auto`. @default [] */
  options?: readonly string[];
  /** The permission that lets it through in (2). @default "network-full-access" */
  grant?: string;
  /** Permissions that must not let it through either, each tried like (3). @default [] */
  notGrantedBy?: readonly string[];
  /** More to check about a run that reached the listener. */
  reached?(out: Output): void;
  /**
   * Checks a run that did not reach the listener.
   * @default assertRanAndFailed: the command itself ran and failed
   */
  denied?(out: Output, what: string): void;
}

/**
 * The shape of every denial case: (1) the command run directly reaches the listener, (2) under
 * the CLI with network-full-access (or the case's `grant`) it does too, (3) under the default
 * policy it does not, and fails by itself, nor with any of `notGrantedBy`; (2) and (3) in each
 * mode.
 * @param t The test's context, for steps.
 * @param reach The command, the listener's count and how to run.
 */
export async function assertCannotReach(t: Deno.TestContext, reach: ReachCase): Promise<void> {
  const launcher = reach.launcher ?? PLAIN;
  const options = reach.options ?? [];
  const what = reach.command[0].split("/").pop()!;
  let seen = await reach.count();
  const measure = async (out: Output) => {
    const before = seen;
    seen = await reach.count();
    return { before, after: seen, out };
  };
  const assertReached = ({ before, after, out }: Awaited<ReturnType<typeof measure>>) => {
    assert.ok(
      after > before,
      `${what} reaches the listener (count ${before} -> ${after}; exit ${out.code}: ${out.stderr})`,
    );
    reach.reached?.(out);
  };

  await t.step("positive control: reaches it when run directly", async () => {
    assertReached(await measure(await launcher.direct(reach.command)));
  });
  const grant = reach.grant ?? "network-full-access";
  for (const mode of MODES) {
    await t.step(`${mode.name}: positive control: reaches it with ${grant}`, async () => {
      const args = [...mode.flags, ...options, "-s", grant, "--", ...reach.command];
      assertReached(await measure(await launcher.cli(args)));
    });
    for (const permission of [undefined, ...(reach.notGrantedBy ?? [])]) {
      const name = permission ? `with ${permission} only` : `without ${grant}`;
      await t.step(`${mode.name}: does not reach it ${name}`, async () => {
        const granted = permission ? ["-s", permission] : [];
        const { before, after, out } = await measure(
          await launcher.cli([...mode.flags, ...options, ...granted, "--", ...reach.command]),
        );
        assert.equal(after, before, `${what} must not reach the listener from inside`);
        (reach.denied ?? assertRanAndFailed)(out, what);
      });
    }
  }
}
