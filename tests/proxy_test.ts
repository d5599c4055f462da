// The network-domain proxy, end to end over loopback: HTTP CONNECT, plain HTTP and SOCKS5,
// decisions, DNS rebinding, limits and misbehaving peers. Every refusal is first shown allowed
// (the same request succeeding), and targets count who reached them. Only listeners these tests
// start on 127.0.0.1 are contacted; made-up names are mapped with the `resolve` option.

import assert from "node:assert/strict";
import { type DomainProxy, type NetworkDecision, startProxy } from "../exec/proxy.ts";
import { type DomainRules, parseDomainPattern } from "../policy/network_domain.ts";
import { skipReason, which } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NO_CURL = which("curl") ? undefined : "curl not installed";
const NO_PYTHON = which("python3") ? undefined : "python3 not installed";

function rules(allow: string[], deny: string[] = []): DomainRules {
  return { allow: allow.map(parseDomainPattern), deny: deny.map(parseDomainPattern) };
}

function names(map: Record<string, string[]>): (host: string) => Promise<string[]> {
  return (host) => {
    const found = map[host];
    return found ? Promise.resolve(found) : Promise.reject(new Error(`no such name ${host}`));
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

// ---------------------------------------------------------------------------------------------
// Targets: loopback listeners that count who reached them

type Behaviour = (conn: Deno.Conn, target: Target) => Promise<void>;

const echo: Behaviour = async (conn) => {
  const buffer = new Uint8Array(64 * 1024);
  for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
    await writeAll(conn, buffer.subarray(0, n));
  }
  await conn.closeWrite();
  // Until the other side closes too.
  await conn.read(buffer);
};

// Reads until the client stops writing, then says how many bytes it got.
const count: Behaviour = async (conn) => {
  const buffer = new Uint8Array(64 * 1024);
  let total = 0;
  for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) total += n;
  await writeAll(conn, encoder.encode(`${total}\n`));
  await conn.closeWrite();
  await conn.read(buffer);
};

// Says hello and stops writing, then keeps reading what the client sends.
const greet: Behaviour = async (conn, target) => {
  await writeAll(conn, encoder.encode("hello\n"));
  await conn.closeWrite();
  const buffer = new Uint8Array(64 * 1024);
  for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
    target.received += n;
  }
};

const closeAtOnce: Behaviour = () => Promise.resolve();

// Reads one byte and closes with the rest unread: the kernel answers with a reset.
const reset: Behaviour = async (conn) => {
  await conn.read(new Uint8Array(1));
};

// Writes until the peer goes away.
const flood: Behaviour = async (conn) => {
  const chunk = new Uint8Array(64 * 1024).fill(120);
  for (;;) await writeAll(conn, chunk);
};

class Target {
  readonly #listener: Deno.Listener;
  readonly #behaviour: Behaviour;
  readonly #loop: Promise<void>;
  readonly #open = new Set<Deno.Conn>();
  readonly #handlers = new Set<Promise<void>>();
  readonly #ports = new Set<number>();
  #waiters: (() => void)[] = [];
  #total = 0;
  #sentinels = 0;
  /** Bytes a behaviour chose to count. */
  received = 0;
  /** Handlers that ended with an error (the peer reset or went away). */
  failures = 0;

  constructor(behaviour: Behaviour) {
    this.#behaviour = behaviour;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#loop = this.#accept();
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  /** Connections accepted so far, sentinels aside (read it after `settle()`). */
  get accepted(): number {
    return this.#total - this.#sentinels;
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        this.#total++;
        this.#ports.add((conn.remoteAddr as Deno.NetAddr).port);
        for (const wake of this.#waiters.splice(0)) wake();
        this.#open.add(conn);
        const handler = this.#behaviour(conn, this).catch(() => {
          this.failures++;
        }).finally(() => {
          this.#open.delete(conn);
          try {
            conn.close();
          } catch {
            // Closed by close().
          }
        });
        this.#handlers.add(handler);
        handler.finally(() => this.#handlers.delete(handler));
      }
    } catch {
      // The listener was closed.
    }
  }

  /**
   * Connects a sentinel and waits until the accept loop took it: accepting is first in, first
   * out, so every connection made before it has been counted.
   */
  async settle(): Promise<number> {
    const sentinel = await Deno.connect({ hostname: "127.0.0.1", port: this.port });
    const port = (sentinel.localAddr as Deno.NetAddr).port;
    while (!this.#ports.has(port)) await new Promise<void>((wake) => this.#waiters.push(wake));
    this.#sentinels++;
    sentinel.close();
    return this.accepted;
  }

  /** Waits until every connection accepted so far has been handled and closed. */
  async idle(): Promise<void> {
    while (this.#handlers.size > 0) await Promise.allSettled([...this.#handlers]);
  }

  async close(): Promise<void> {
    this.#listener.close();
    for (const conn of this.#open) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
    await this.#loop;
    await this.idle();
  }
}

// ---------------------------------------------------------------------------------------------
// Clients

interface Head {
  status: number;
  headers: Headers;
  text: string;
}

class Client {
  readonly conn: Deno.Conn;
  #buffer = new Uint8Array(0);
  /** Whether reading ended with an error (a reset) rather than an end of stream. */
  reset = false;

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  static async open(port: number): Promise<Client> {
    return new Client(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async write(data: string | Uint8Array): Promise<void> {
    await writeAll(this.conn, typeof data === "string" ? encoder.encode(data) : data);
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    let n: number | null;
    try {
      n = await this.conn.read(chunk);
    } catch {
      this.reset = true;
      return false;
    }
    if (n === null) return false;
    const joined = new Uint8Array(this.#buffer.length + n);
    joined.set(this.#buffer);
    joined.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = joined;
    return true;
  }

  /** Reads an HTTP response head; the bytes after it stay for the next read. */
  async readHead(): Promise<Head> {
    for (;;) {
      const text = decoder.decode(this.#buffer);
      const end = text.indexOf("\r\n\r\n");
      if (end !== -1) {
        this.#buffer = this.#buffer.subarray(encoder.encode(text.slice(0, end + 4)).length);
        const [line, ...fields] = text.slice(0, end).split("\r\n");
        const headers = new Headers();
        for (const field of fields) {
          const colon = field.indexOf(":");
          headers.append(field.slice(0, colon), field.slice(colon + 1).trim());
        }
        return { status: Number(line.split(" ")[1]), headers, text: text.slice(0, end) };
      }
      if (!await this.#fill()) throw new Error(`No response head, got ${JSON.stringify(text)}`);
    }
  }

  async readExactly(n: number): Promise<Uint8Array> {
    while (this.#buffer.length < n) {
      if (!await this.#fill()) throw new Error(`Ended after ${this.#buffer.length} of ${n} bytes`);
    }
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  async readText(n: number): Promise<string> {
    return decoder.decode(await this.readExactly(n));
  }

  /** Reads until the end of the stream (or a reset). */
  async readToEnd(): Promise<string> {
    while (await this.#fill());
    const text = decoder.decode(this.#buffer);
    this.#buffer = new Uint8Array(0);
    return text;
  }

  async closeWrite(): Promise<void> {
    await this.conn.closeWrite();
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

async function connectVia(proxy: DomainProxy, target: string): Promise<[Client, Head]> {
  const client = await Client.open(proxy.port);
  await client.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  return [client, await client.readHead()];
}

/** A refused CONNECT: the whole answer, the connection closed by the proxy. */
async function refusedVia(proxy: DomainProxy, target: string): Promise<Head & { body: string }> {
  const [client, head] = await connectVia(proxy, target);
  try {
    // A tunnel opened by mistake would wait for its peer: fail now instead.
    assert.notEqual(head.status, 200, `${target} must be refused`);
    return { ...head, body: await client.readToEnd() };
  } finally {
    client.close();
  }
}

/** A tunnel that must work: says "ping" through it and checks the echo. */
async function pingVia(proxy: DomainProxy, target: string): Promise<void> {
  const [client, head] = await connectVia(proxy, target);
  try {
    assert.equal(head.status, 200, head.text);
    await client.write("ping");
    assert.equal(await client.readText(4), "ping");
    await client.closeWrite();
    assert.equal(await client.readToEnd(), "");
  } finally {
    client.close();
  }
}

function last(proxy: DomainProxy): NetworkDecision {
  const all = proxy.decisions();
  return all[all.length - 1];
}

// ---------------------------------------------------------------------------------------------
// CONNECT: decisions

Deno.test("proxy: CONNECT to an allowed address relays both ways, bytes counted", async () => {
  const target = new Target(echo);
  const proxy = startProxy({ rules: rules([`127.0.0.1:${target.port}`]) });
  try {
    const [client, head] = await connectVia(proxy, `127.0.0.1:${target.port}`);
    assert.equal(head.text, "HTTP/1.1 200 Connection established");
    const payload = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
    const sending = client.write(payload).then(() => client.closeWrite());
    const back = await client.readExactly(payload.length);
    await sending;
    assert.deepEqual(back, payload);
    assert.equal(await client.readToEnd(), "");
    client.close();
    await target.idle();
    assert.equal(await target.settle(), 1);
    assert.deepEqual(proxy.decisions(), [{
      protocol: "connect",
      host: "127.0.0.1",
      port: target.port,
      allowed: true,
      reason: `allowed by network-domain=127.0.0.1:${target.port}`,
      rule: `127.0.0.1:${target.port}`,
      address: "127.0.0.1",
      bytesUp: payload.length,
      bytesDown: payload.length,
    }]);
  } finally {
    await proxy.close();
    await target.close();
  }
});

Deno.test("proxy: CONNECT to a refused host gets 403 before any byte", async (t) => {
  const target = new Target(echo);
  const address = `127.0.0.1:${target.port}`;
  const refused: NetworkDecision[] = [];
  try {
    await t.step("positive control: allowed, the target is reached", async () => {
      const proxy = startProxy({ rules: rules([address]) });
      try {
        await pingVia(proxy, address);
        assert.equal(await target.settle(), 1);
      } finally {
        await proxy.close();
      }
    });
    await t.step("no permission: 403 with the reason, the target never reached", async () => {
      const proxy = startProxy({
        rules: rules(["example.com"]),
        onRefused: (decision) => refused.push(decision),
      });
      try {
        const client = await Client.open(proxy.port);
        // Bytes sent right behind the request must not reach the target either.
        await client.write(`CONNECT ${address} HTTP/1.1\r\n\r\nearly bytes`);
        const head = await client.readHead();
        const body = await client.readToEnd();
        client.close();
        const reason = `no network-domain permission matches ${address}`;
        assert.equal(head.status, 403);
        assert.equal(head.headers.get("X-Llmx-Sandbox-Reason"), reason);
        assert.equal(body, `llmx-sandbox: ${reason}\n`);
        assert.equal(await target.settle(), 1);
        // Refused twice: onRefused is called once per host and port.
        assert.equal((await refusedVia(proxy, address)).status, 403);
        assert.equal(await target.settle(), 1);
        assert.equal(refused.length, 1);
        assert.equal(refused[0].suggestion, `network-domain=${address}`);
        assert.deepEqual(proxy.decisions().map((d) => [d.allowed, d.bytesUp, d.bytesDown]), [
          [false, 0, 0],
          [false, 0, 0],
        ]);
      } finally {
        await proxy.close();
      }
    });
    await t.step("deny wins over the same allow", async () => {
      const proxy = startProxy({ rules: rules([address], ["127.0.0.1"]) });
      try {
        const answer = await refusedVia(proxy, address);
        assert.equal(answer.status, 403);
        assert.equal(
          answer.headers.get("X-Llmx-Sandbox-Reason"),
          "refused by --deny-domain 127.0.0.1",
        );
        assert.equal(await target.settle(), 1);
      } finally {
        await proxy.close();
      }
    });
  } finally {
    await target.close();
  }
});

Deno.test("proxy: a name resolving to loopback is refused unless 127.0.0.1 is named", async (t) => {
  const target = new Target(echo);
  const resolve = names({ "allowed.test": ["127.0.0.1"] });
  const name = `allowed.test:${target.port}`;
  try {
    await t.step("positive control: the name and the address both allowed", async () => {
      const proxy = startProxy({ rules: rules([name, `127.0.0.1:${target.port}`]), resolve });
      try {
        await pingVia(proxy, name);
        assert.equal(await target.settle(), 1);
        assert.equal(last(proxy).address, "127.0.0.1");
      } finally {
        await proxy.close();
      }
    });
    await t.step("the name alone: refused as loopback, with the permission to add", async () => {
      const proxy = startProxy({ rules: rules([name]), resolve });
      try {
        const answer = await refusedVia(proxy, name);
        assert.equal(answer.status, 403);
        assert.equal(
          answer.headers.get("X-Llmx-Sandbox-Reason"),
          `allowed.test resolves to a loopback address (127.0.0.1); allow that address by name: ` +
            `network-domain=127.0.0.1:${target.port}`,
        );
        assert.equal(await target.settle(), 1);
        assert.equal(last(proxy).suggestion, `network-domain=127.0.0.1:${target.port}`);
      } finally {
        await proxy.close();
      }
    });
  } finally {
    await target.close();
  }
});

Deno.test("proxy: connects to the address it checked and never resolves again", async () => {
  const target = new Target(echo);
  const calls: string[] = [];
  // The first answer is checked; any later one would point elsewhere (DNS rebinding).
  const resolve = (host: string) => {
    calls.push(host);
    return Promise.resolve(calls.length === 1 ? ["127.0.0.1"] : ["10.255.255.1"]);
  };
  const proxy = startProxy({
    rules: rules([`rebind.test:${target.port}`, `127.0.0.1:${target.port}`, "10.255.255.1"]),
    resolve,
  });
  try {
    await pingVia(proxy, `rebind.test:${target.port}`);
    assert.deepEqual(calls, ["rebind.test"]);
    assert.equal(last(proxy).address, "127.0.0.1");
    assert.equal(await target.settle(), 1);
  } finally {
    await proxy.close();
    await target.close();
  }
});

Deno.test("proxy: a wildcard matches subdomains, not the name itself, and deny wins", async (t) => {
  const target = new Target(echo);
  const port = target.port;
  const resolve = () => Promise.resolve(["127.0.0.1"]);
  const proxy = startProxy({
    rules: rules([`*.example.test:${port}`, `127.0.0.1:${port}`], ["bad.example.test"]),
    resolve,
  });
  try {
    await t.step("a.example.test is allowed", async () => {
      await pingVia(proxy, `a.example.test:${port}`);
      assert.equal(await target.settle(), 1);
      assert.equal(last(proxy).reason, `allowed by network-domain=*.example.test:${port}`);
    });
    await t.step("example.test is not", async () => {
      const answer = await refusedVia(proxy, `example.test:${port}`);
      assert.equal(answer.status, 403);
      assert.equal(
        answer.headers.get("X-Llmx-Sandbox-Reason"),
        `no network-domain permission matches example.test:${port}`,
      );
      assert.equal(await target.settle(), 1);
    });
    await t.step("bad.example.test is denied", async () => {
      const answer = await refusedVia(proxy, `Bad.Example.Test.:${port}`);
      assert.equal(
        answer.headers.get("X-Llmx-Sandbox-Reason"),
        "refused by --deny-domain bad.example.test",
      );
      assert.equal(await target.settle(), 1);
    });
  } finally {
    await proxy.close();
    await target.close();
  }
});

Deno.test("proxy: a pattern without a port allows only 80 and 443", async (t) => {
  const target = new Target(echo);
  const resolve = names({ "allowed.test": ["127.0.0.1"] });
  const name = `allowed.test:${target.port}`;
  try {
    await t.step("positive control: the port named", async () => {
      const proxy = startProxy({ rules: rules([name, `127.0.0.1:${target.port}`]), resolve });
      try {
        await pingVia(proxy, name);
        assert.equal(await target.settle(), 1);
      } finally {
        await proxy.close();
      }
    });
    await t.step("no port: refused on another port", async () => {
      const proxy = startProxy({
        rules: rules(["allowed.test", `127.0.0.1:${target.port}`]),
        resolve,
      });
      try {
        const answer = await refusedVia(proxy, name);
        assert.equal(
          answer.headers.get("X-Llmx-Sandbox-Reason"),
          `port ${target.port} is not allowed for allowed.test ` +
            "(network-domain=allowed.test allows 80, 443)",
        );
        assert.equal(await target.settle(), 1);
      } finally {
        await proxy.close();
      }
    });
  } finally {
    await target.close();
  }
});

Deno.test("proxy: localhost reaches loopback without asking the resolver", async () => {
  const target = new Target(echo);
  const proxy = startProxy({
    rules: rules([`localhost:${target.port}`]),
    resolve: () => Promise.reject(new Error("localhost must not be resolved")),
  });
  try {
    await pingVia(proxy, `localhost:${target.port}`);
    assert.equal(await target.settle(), 1);
  } finally {
    await proxy.close();
    await target.close();
  }
});

function hostsEntryFor127(): string | undefined {
  try {
    for (const line of Deno.readTextFileSync("/etc/hosts").split("\n")) {
      const [address, ...aliases] = line.replace(/#.*/, "").trim().split(/\s+/);
      if (address !== "127.0.0.1") continue;
      const name = aliases.find((alias) => alias !== "localhost" && /^[a-z0-9.-]+$/i.test(alias));
      if (name !== undefined && !/^[0-9.]+$/.test(name)) return name;
    }
  } catch {
    // No /etc/hosts.
  }
  return undefined;
}

const HOSTS_NAME = hostsEntryFor127();

Deno.test({
  name: skipReason(
    "proxy: the system resolver reads /etc/hosts",
    HOSTS_NAME ? undefined : "no name for 127.0.0.1 in /etc/hosts but localhost",
  ),
  ignore: HOSTS_NAME === undefined,
  fn: async (t) => {
    const target = new Target(echo);
    const name = `${HOSTS_NAME}:${target.port}`;
    try {
      await t.step("the name and its address allowed", async () => {
        const proxy = startProxy({ rules: rules([name, `127.0.0.1:${target.port}`]) });
        try {
          await pingVia(proxy, name);
          assert.equal(await target.settle(), 1);
        } finally {
          await proxy.close();
        }
      });
      await t.step("the name alone: refused as loopback", async () => {
        const proxy = startProxy({ rules: rules([name]) });
        try {
          const answer = await refusedVia(proxy, name);
          assert.match(
            answer.headers.get("X-Llmx-Sandbox-Reason")!,
            /resolves to a loopback address/,
          );
          assert.equal(await target.settle(), 1);
        } finally {
          await proxy.close();
        }
      });
    } finally {
      await target.close();
    }
  },
});

Deno.test("proxy: an unreachable or unresolvable target gets 502 with the reason", async (t) => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (closed.addr as Deno.NetAddr).port;
  closed.close();
  const proxy = startProxy({
    rules: rules([`127.0.0.1:${port}`, `nowhere.test:${port}`]),
    resolve: names({}),
  });
  try {
    await t.step("nothing listens", async () => {
      const answer = await refusedVia(proxy, `127.0.0.1:${port}`);
      assert.equal(answer.status, 502);
      assert.match(
        answer.headers.get("X-Llmx-Sandbox-Reason")!,
        new RegExp(
          `^could not connect to 127\\.0\\.0\\.1:${port} \\(127\\.0\\.0\\.1: .*refused`,
          "i",
        ),
      );
      const decision = last(proxy);
      assert.equal(decision.allowed, true);
      assert.match(decision.error!, /could not connect/);
    });
    await t.step("the name does not resolve", async () => {
      const answer = await refusedVia(proxy, `nowhere.test:${port}`);
      assert.equal(answer.status, 502);
      assert.equal(
        answer.headers.get("X-Llmx-Sandbox-Reason"),
        "could not resolve nowhere.test: no such name nowhere.test",
      );
    });
  } finally {
    await proxy.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Plain HTTP

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

async function withHttpTarget(fn: (port: number, seen: Seen[]) => Promise<void>): Promise<void> {
  const seen: Seen[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const url = new URL(request.url);
      seen.push({
        method: request.method,
        url: url.pathname + url.search,
        headers: Object.fromEntries(request.headers),
        body: await request.text(),
      });
      return new Response(`seen ${seen.length}\n`, { headers: { "Keep-Alive": "timeout=5" } });
    },
  );
  try {
    await fn(server.addr.port, seen);
  } finally {
    await server.shutdown();
  }
}

async function httpVia(proxy: DomainProxy, request: string): Promise<[Head, string]> {
  const client = await Client.open(proxy.port);
  try {
    await client.write(request);
    const head = await client.readHead();
    return [head, await client.readToEnd()];
  } finally {
    client.close();
  }
}

Deno.test("proxy: plain HTTP is forwarded in origin form without hop-by-hop headers", async () => {
  const heads: string[] = [];
  // Answers one request with a keep-alive response, as servers do.
  const target = new Target(async (conn) => {
    const buffer = new Uint8Array(64 * 1024);
    let text = "";
    while (!text.includes("\r\n\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) return;
      text += decoder.decode(buffer.subarray(0, n));
    }
    heads.push(text);
    await writeAll(
      conn,
      encoder.encode(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Hop\r\n" +
          "Keep-Alive: timeout=5\r\nX-Hop: 1\r\nX-Kept: 2\r\n\r\nok",
      ),
    );
  });
  const proxy = startProxy({ rules: rules([`127.0.0.1:${target.port}`]) });
  try {
    const [head, body] = await httpVia(
      proxy,
      `GET http://127.0.0.1:${target.port}/path/../x?q=1#frag HTTP/1.1\r\n` +
        "Host: elsewhere.example\r\nProxy-Authorization: Basic eDp5\r\n" +
        "Proxy-Connection: keep-alive\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n" +
        "X-Keep: 2\r\n\r\n",
    );
    assert.equal(
      heads[0],
      `GET /path/../x?q=1 HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\nX-Keep: 2\r\n` +
        "Connection: close\r\n\r\n",
    );
    assert.equal(
      head.text,
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Kept: 2\r\nConnection: close",
    );
    assert.equal(body, "ok");
    const decision = last(proxy);
    assert.equal(decision.protocol, "http");
    assert.equal(decision.bytesUp, heads[0].length);
    assert.equal(decision.bytesDown, head.text.length + 4 + 2);
  } finally {
    await proxy.close();
    await target.close();
  }
});

Deno.test("proxy: plain HTTP passes 100 Continue and a response without a length", async () => {
  const target = new Target(async (conn) => {
    const buffer = new Uint8Array(64 * 1024);
    let text = "";
    while (!text.includes("\r\n\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) return;
      text += decoder.decode(buffer.subarray(0, n));
    }
    await writeAll(
      conn,
      encoder.encode("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil the end"),
    );
  });
  const proxy = startProxy({ rules: rules([`127.0.0.1:${target.port}`]) });
  try {
    const client = await Client.open(proxy.port);
    await client.write(
      `POST http://127.0.0.1:${target.port}/ HTTP/1.1\r\nExpect: 100-continue\r\n` +
        "Content-Length: 0\r\n\r\n",
    );
    assert.equal((await client.readHead()).status, 100);
    const final = await client.readHead();
    assert.equal(final.text, "HTTP/1.0 200 OK\r\nConnection: close");
    assert.equal(await client.readToEnd(), "until the end");
    client.close();
  } finally {
    await proxy.close();
    await target.close();
  }
});

Deno.test("proxy: plain HTTP request bodies pass through", async (t) => {
  await withHttpTarget(async (port, seen) => {
    const proxy = startProxy({ rules: rules([`127.0.0.1:${port}`]) });
    const url = `http://127.0.0.1:${port}/upload`;
    try {
      await t.step("with Content-Length", async () => {
        const [head] = await httpVia(
          proxy,
          `POST ${url} HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world`,
        );
        assert.equal(head.status, 200);
        assert.equal(seen.at(-1)!.body, "hello world");
      });
      await t.step("chunked", async () => {
        const [head] = await httpVia(
          proxy,
          `POST ${url} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n` +
            "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        );
        assert.equal(head.status, 200);
        assert.equal(seen.at(-1)!.body, "hello world");
      });
      await t.step("a large body sent in pieces", async () => {
        const client = await Client.open(proxy.port);
        const size = 4 * 1024 * 1024;
        await client.write(`PUT ${url} HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
        const chunk = "y".repeat(64 * 1024);
        for (let sent = 0; sent < size; sent += chunk.length) await client.write(chunk);
        assert.equal((await client.readHead()).status, 200);
        await client.readToEnd();
        client.close();
        assert.equal(seen.at(-1)!.body.length, size);
        assert.ok(last(proxy).bytesUp > size);
      });
      await t.step("both Content-Length and Transfer-Encoding: 400", async () => {
        const before = seen.length;
        const [head] = await httpVia(
          proxy,
          `POST ${url} HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n` +
            "0\r\n\r\n",
        );
        assert.equal(head.status, 400);
        assert.equal(seen.length, before);
      });
    } finally {
      await proxy.close();
    }
  });
});

Deno.test("proxy: a refused plain HTTP request gets 403, the server never sees it", async (t) => {
  await withHttpTarget(async (port, seen) => {
    const request = `GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: x\r\n\r\n`;
    await t.step("positive control: allowed", async () => {
      const proxy = startProxy({ rules: rules([`127.0.0.1:${port}`]) });
      try {
        assert.equal((await httpVia(proxy, request))[0].status, 200);
        assert.equal(seen.length, 1);
      } finally {
        await proxy.close();
      }
    });
    await t.step("refused", async () => {
      const proxy = startProxy({ rules: rules([`127.0.0.1:${port + 1 > 65535 ? 1 : port + 1}`]) });
      try {
        const [head, body] = await httpVia(proxy, request);
        assert.equal(head.status, 403);
        assert.match(body, /^llmx-sandbox: port \d+ is not allowed for 127\.0\.0\.1/);
        assert.equal(seen.length, 1);
      } finally {
        await proxy.close();
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Real clients

async function runTool(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(command, {
    args,
    env: { NO_PROXY: "", no_proxy: "", ...env },
    stdin: "null",
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test({
  name: skipReason("proxy: curl through the proxy", NO_CURL),
  ignore: NO_CURL !== undefined,
  fn: async (t) => {
    await withHttpTarget(async (port, seen) => {
      const refusedNames: string[] = [];
      const proxy = startProxy({
        rules: rules([`127.0.0.1:${port}`, `allowed.test:${port}`]),
        resolve: names({ "allowed.test": ["127.0.0.1"], "evil.test": ["127.0.0.1"] }),
        onRefused: (decision) => refusedNames.push(decision.host),
      });
      const proxyUrl = `http://127.0.0.1:${proxy.port}`;
      const curl = (...args: string[]) =>
        runTool("curl", ["-sS", "--noproxy", "", "--max-time", "20", ...args]);
      try {
        await t.step("plain HTTP with -x", async () => {
          const out = await curl("-x", proxyUrl, `http://127.0.0.1:${port}/a`);
          assert.equal(out.stdout, "seen 1\n", out.stderr);
        });
        await t.step("plain HTTP with http_proxy", async () => {
          const out = await runTool("curl", ["-sS", `http://127.0.0.1:${port}/b`], {
            http_proxy: proxyUrl,
          });
          assert.equal(out.stdout, "seen 2\n", out.stderr);
          assert.equal(seen[1].url, "/b");
        });
        await t.step("a CONNECT tunnel (--proxytunnel) to a name", async () => {
          const out = await curl("-p", "-x", proxyUrl, `http://allowed.test:${port}/c`);
          assert.equal(out.stdout, "seen 3\n", out.stderr);
        });
        await t.step("a POST body", async () => {
          const out = await curl(
            "-x",
            proxyUrl,
            "--data-binary",
            "payload",
            `http://127.0.0.1:${port}/d`,
          );
          assert.equal(out.stdout, "seen 4\n", out.stderr);
          assert.equal(seen[3].body, "payload");
        });
        await t.step("SOCKS5 with the name resolved by the proxy", async () => {
          const out = await curl(
            "--socks5-hostname",
            `127.0.0.1:${proxy.port}`,
            `http://allowed.test:${port}/e`,
          );
          assert.equal(out.stdout, "seen 5\n", out.stderr);
        });
        await t.step("refused: a CONNECT tunnel fails with 403", async () => {
          const out = await curl("-p", "-x", proxyUrl, `http://evil.test:${port}/`);
          assert.notEqual(out.code, 0);
          assert.match(out.stderr, /403/);
          assert.equal(seen.length, 5);
        });
        await t.step("refused: plain HTTP shows 403 and the reason", async () => {
          const out = await curl("-i", "-x", proxyUrl, `http://evil.test:${port}/`);
          assert.match(out.stdout, /^HTTP\/1\.1 403 Forbidden/);
          assert.match(
            out.stdout,
            /X-Llmx-Sandbox-Reason: no network-domain permission matches evil\.test:/,
          );
          assert.equal(seen.length, 5);
        });
        await t.step("refused: SOCKS5", async () => {
          const out = await curl(
            "--socks5-hostname",
            `127.0.0.1:${proxy.port}`,
            `http://evil.test:${port}/`,
          );
          assert.notEqual(out.code, 0);
          assert.equal(seen.length, 5);
          assert.deepEqual(refusedNames, ["evil.test"]);
        });
      } finally {
        await proxy.close();
      }
    });
  },
});

const URLLIB_PY = `
import sys, urllib.request, urllib.error
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": sys.argv[1]}))
try:
    with opener.open(sys.argv[2], timeout=20) as response:
        print(response.status, response.read().decode().strip())
except urllib.error.HTTPError as e:
    print(e.code, e.headers.get("X-Llmx-Sandbox-Reason"))
`;

Deno.test({
  name: skipReason("proxy: python3 urllib through the proxy", NO_PYTHON),
  ignore: NO_PYTHON !== undefined,
  fn: async () => {
    await withHttpTarget(async (port, seen) => {
      const proxy = startProxy({
        rules: rules([`127.0.0.1:${port}`]),
        resolve: names({ "evil.test": ["127.0.0.1"] }),
      });
      const proxyUrl = `http://127.0.0.1:${proxy.port}`;
      try {
        const allowed = await runTool("python3", [
          "-c",
          URLLIB_PY,
          proxyUrl,
          `http://127.0.0.1:${port}/py`,
        ]);
        assert.equal(allowed.stdout, "200 seen 1\n", allowed.stderr);
        assert.equal(seen[0].url, "/py");
        const refused = await runTool("python3", [
          "-c",
          URLLIB_PY,
          proxyUrl,
          `http://evil.test:${port}/`,
        ]);
        assert.equal(
          refused.stdout,
          `403 no network-domain permission matches evil.test:${port}\n`,
          refused.stderr,
        );
        assert.equal(seen.length, 1);
      } finally {
        await proxy.close();
      }
    });
  },
});

// ---------------------------------------------------------------------------------------------
// SOCKS5

Deno.test("proxy: SOCKS5 CONNECT by name and by address, with the same decisions", async (t) => {
  const target = new Target(echo);
  const port = target.port;
  const proxy = startProxy({
    rules: rules([`allowed.test:${port}`, `127.0.0.1:${port}`]),
    resolve: names({ "allowed.test": ["127.0.0.1"], "evil.test": ["127.0.0.1"] }),
  });
  const portBytes = [port >> 8, port & 0xff];
  const byName = (name: string) => [5, 1, 0, 3, name.length, ...encoder.encode(name), ...portBytes];
  async function socks(request: number[]): Promise<[Client, Uint8Array]> {
    const client = await Client.open(proxy.port);
    await client.write(Uint8Array.of(5, 1, 0));
    assert.deepEqual([...await client.readExactly(2)], [5, 0]);
    await client.write(Uint8Array.from(request));
    return [client, await client.readExactly(10)];
  }
  try {
    await t.step("by name, allowed", async () => {
      const [client, reply] = await socks(byName("allowed.test"));
      assert.equal(reply[1], 0);
      await client.write("ping");
      assert.equal(await client.readText(4), "ping");
      client.close();
      assert.equal(await target.settle(), 1);
    });
    await t.step("by IPv4 address, allowed", async () => {
      const [client, reply] = await socks([5, 1, 0, 1, 127, 0, 0, 1, ...portBytes]);
      assert.equal(reply[1], 0);
      await client.write("pong");
      assert.equal(await client.readText(4), "pong");
      client.close();
      assert.equal(await target.settle(), 2);
      assert.equal(last(proxy).protocol, "socks5");
    });
    await t.step("by name, refused: reply 2, the target never reached", async () => {
      const [client, reply] = await socks(byName("evil.test"));
      assert.equal(reply[1], 2);
      assert.equal(await client.readToEnd(), "");
      client.close();
      assert.equal(await target.settle(), 2);
      assert.equal(last(proxy).reason, `no network-domain permission matches evil.test:${port}`);
    });
    await t.step("by IPv6 address, refused", async () => {
      const [client, reply] = await socks([5, 1, 0, 4, ...new Array(15).fill(0), 1, ...portBytes]);
      assert.equal(reply[1], 2);
      client.close();
      assert.equal(last(proxy).host, "::1");
    });
    await t.step("a name with control bytes: refused, recorded printable", async () => {
      const [client, reply] = await socks([5, 1, 0, 3, 3, 0x1b, 0x9b, 0x41, ...portBytes]);
      assert.equal(reply[1], 2);
      client.close();
      assert.equal(last(proxy).host, "??A");
      assert.equal(last(proxy).reason, '"??A" is not a valid host name or address');
    });
    await t.step("BIND is not supported: reply 7", async () => {
      const [client, reply] = await socks([5, 2, 0, 1, 127, 0, 0, 1, ...portBytes]);
      assert.equal(reply[1], 7);
      client.close();
    });
    await t.step("no acceptable method: 0xff", async () => {
      const client = await Client.open(proxy.port);
      await client.write(Uint8Array.of(5, 1, 2));
      assert.deepEqual([...await client.readExactly(2)], [5, 0xff]);
      assert.equal(await client.readToEnd(), "");
      client.close();
    });
  } finally {
    await proxy.close();
    await target.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Robustness

Deno.test("proxy: 100 parallel CONNECT tunnels all relay their own bytes", async () => {
  const target = new Target(echo);
  const proxy = startProxy({ rules: rules([`127.0.0.1:${target.port}`]) });
  try {
    await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const [client, head] = await connectVia(proxy, `127.0.0.1:${target.port}`);
      try {
        assert.equal(head.status, 200);
        const message = `tunnel ${i} `.repeat(1000);
        const sending = client.write(message).then(() => client.closeWrite());
        assert.equal(await client.readToEnd(), message);
        await sending;
      } finally {
        client.close();
      }
    }));
    assert.equal(await target.settle(), 100);
    assert.equal(proxy.decisions().length, 100);
  } finally {
    await proxy.close();
    await target.close();
  }
});

Deno.test("proxy: a client that never sends its request is closed at head timeout", async (t) => {
  const proxy = startProxy({ rules: rules([]), headTimeoutMs: 50 });
  try {
    await t.step("nothing at all", async () => {
      const client = await Client.open(proxy.port);
      assert.equal(await client.readToEnd(), "");
      client.close();
    });
    await t.step("half a request head", async () => {
      const client = await Client.open(proxy.port);
      await client.write("CONNECT 127.0.0.1:1 HTTP/1.1\r\n");
      assert.equal(await client.readToEnd(), "");
      client.close();
    });
    await t.step("half a SOCKS5 greeting", async () => {
      const client = await Client.open(proxy.port);
      await client.write(Uint8Array.of(5));
      assert.equal(await client.readToEnd(), "");
      client.close();
    });
    assert.deepEqual(proxy.decisions(), []);
  } finally {
    await proxy.close();
  }
});

Deno.test("proxy: an oversized request head gets 431 and the connection closes", async () => {
  const proxy = startProxy({ rules: rules([]), maxHeadBytes: 1024 });
  try {
    const client = await Client.open(proxy.port);
    // More than the limit, never ending: the proxy must answer without waiting for the end.
    const sending = client.write(`GET http://x.test/ HTTP/1.1\r\nX-Big: ${"a".repeat(16 * 1024)}`)
      .catch(() => {});
    const head = await client.readHead();
    assert.equal(head.status, 431);
    assert.match(head.headers.get("X-Llmx-Sandbox-Reason")!, /larger than 1024 bytes/);
    await client.readToEnd();
    await sending;
    client.close();
    assert.deepEqual(proxy.decisions(), []);
  } finally {
    await proxy.close();
  }
});

Deno.test("proxy: a malformed request gets 400", async (t) => {
  const proxy = startProxy({ rules: rules(["127.0.0.1:1"]) });
  const cases: [string, string, RegExp][] = [
    ["a request line without a version", "HELLO\r\n\r\n", /malformed request line "HELLO"/],
    ["TLS sent straight to the proxy", "\x16\x03\x01\x02\x00\x01", /not an HTTP request/],
    ["HTTP/2 on the request line", "GET http://x.test/ HTTP/2.0\r\n\r\n", /malformed request line/],
    [
      "an origin-form request",
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      /expected an absolute http:\/\/ URL/,
    ],
    ["an https:// URL", "GET https://x.test/ HTTP/1.1\r\n\r\n", /CONNECT tunnel/],
    [
      "a CONNECT without a port",
      "CONNECT x.test HTTP/1.1\r\n\r\n",
      /malformed CONNECT target "x\.test"/,
    ],
    ["a CONNECT to a numeric name", "CONNECT 127.1:1 HTTP/1.1\r\n\r\n", /malformed CONNECT target/],
    ["a bare IPv6 CONNECT", "CONNECT ::1:80 HTTP/1.1\r\n\r\n", /malformed CONNECT target/],
    [
      "a header without a colon",
      "GET http://x.test/ HTTP/1.1\r\nNoColon\r\n\r\n",
      /malformed header/,
    ],
    ["a folded header", "GET http://x.test/ HTTP/1.1\r\nA: b\r\n c\r\n\r\n", /malformed header/],
    ["a user name in the URL", "GET http://u:p@127.0.0.1:1/ HTTP/1.1\r\n\r\n", /user name/],
  ];
  try {
    for (const [what, request, reason] of cases) {
      await t.step(what, async () => {
        const [head] = await httpVia(proxy, request);
        assert.equal(head.status, 400);
        assert.match(head.headers.get("X-Llmx-Sandbox-Reason")!, reason);
      });
    }
    assert.deepEqual(proxy.decisions(), []);
  } finally {
    await proxy.close();
  }
});

Deno.test("proxy: a target that closes or resets at once ends its tunnel only", async (t) => {
  for (const [what, behaviour] of [["closes", closeAtOnce], ["resets", reset]] as const) {
    await t.step(`the target ${what}`, async () => {
      const target = new Target(behaviour);
      const healthy = new Target(echo);
      const proxy = startProxy({ rules: rules([`127.0.0.1:${target.port},${healthy.port}`]) });
      try {
        const [client, head] = await connectVia(proxy, `127.0.0.1:${target.port}`);
        assert.equal(head.status, 200);
        await client.write("0123456789".repeat(100)).catch(() => {});
        assert.equal(await client.readToEnd(), "");
        client.close();
        assert.equal(await target.settle(), 1);
        // The proxy still serves.
        await pingVia(proxy, `127.0.0.1:${healthy.port}`);
      } finally {
        await proxy.close();
        await target.close();
        await healthy.close();
      }
    });
  }
});

Deno.test("proxy: a client that stops writing still receives the rest", async () => {
  const target = new Target(count);
  const proxy = startProxy({ rules: rules([`127.0.0.1:${target.port}`]) });
  try {
    const [client, head] = await connectVia(proxy, `127.0.0.1:${target.port}`);
    assert.equal(head.status, 200);
    await client.write("abc");
    await client.closeWrite();
    assert.equal(await client.readToEnd(), "3\n");
    client.close();
  } finally {
    await proxy.close();
    await target.close();
  }
});

Deno.test("proxy: a target that stops writing still receives what the client sends", async () => {
  const target = new Target(greet);
  const proxy = startProxy({ rules: rules([`127.0.0.1:${target.port}`]) });
  try {
    const [client, head] = await connectVia(proxy, `127.0.0.1:${target.port}`);
    assert.equal(head.status, 200);
    assert.equal(await client.readToEnd(), "hello\n");
    await client.write("after the target's end");
    await client.closeWrite();
    await target.idle();
    assert.equal(target.received, "after the target's end".length);
    client.close();
    await target.settle();
    assert.equal(last(proxy).bytesUp, "after the target's end".length);
  } finally {
    await proxy.close();
    await target.close();
  }
});

Deno.test("proxy: a client that disconnects mid-tunnel ends the target's connection", async () => {
  const target = new Target(flood);
  const proxy = startProxy({ rules: rules([`127.0.0.1:${target.port}`]) });
  try {
    const [client, head] = await connectVia(proxy, `127.0.0.1:${target.port}`);
    assert.equal(head.status, 200);
    await client.readExactly(256 * 1024);
    client.close();
    // The flooding target's writes fail once the proxy closed its side.
    await target.idle();
    assert.equal(target.failures, 1);
    assert.ok(last(proxy).bytesDown >= 256 * 1024);
  } finally {
    await proxy.close();
    await target.close();
  }
});

Deno.test("proxy: close() ends open tunnels and resolves when all is gone", async () => {
  const target = new Target(echo);
  const proxy = startProxy({ rules: rules([`127.0.0.1:${target.port}`]) });
  const clients: Client[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const [client, head] = await connectVia(proxy, `127.0.0.1:${target.port}`);
      assert.equal(head.status, 200);
      await client.write("x");
      assert.equal(await client.readText(1), "x");
      clients.push(client);
    }
    // And one that has not sent its request yet.
    const idle = await Client.open(proxy.port);
    clients.push(idle);
    const closing = proxy.close();
    assert.equal(proxy.close(), closing);
    await closing;
    for (const client of clients) assert.equal(await client.readToEnd(), "");
    await target.idle();
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: proxy.port }));
  } finally {
    for (const client of clients) client.close();
    await proxy.close();
    await target.close();
  }
});

Deno.test("proxy: connections over the limit wait for a free slot", async () => {
  const target = new Target(echo);
  const proxy = startProxy({ rules: rules([`127.0.0.1:${target.port}`]), maxConnections: 1 });
  try {
    const [first, head] = await connectVia(proxy, `127.0.0.1:${target.port}`);
    assert.equal(head.status, 200);
    const second = await Client.open(proxy.port);
    await second.write(`CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\n\r\n`);
    // The first tunnel still works while the second waits.
    await first.write("one");
    assert.equal(await first.readText(3), "one");
    assert.equal(proxy.decisions().length, 1);
    first.close();
    assert.equal((await second.readHead()).status, 200);
    second.close();
  } finally {
    await proxy.close();
    await target.close();
  }
});

Deno.test("proxy: an onRefused that throws does not change the answer", async () => {
  const proxy = startProxy({
    rules: rules([]),
    onRefused: () => {
      throw new Error("printing failed");
    },
  });
  try {
    assert.equal((await refusedVia(proxy, "127.0.0.1:1")).status, 403);
    assert.equal((await refusedVia(proxy, "127.0.0.1:1")).status, 403);
  } finally {
    await proxy.close();
  }
});

Deno.test("proxy: decisions() are copies and stop at maxDecisions", async () => {
  const proxy = startProxy({ rules: rules([]), maxDecisions: 2 });
  try {
    for (let i = 0; i < 3; i++) await refusedVia(proxy, `127.0.0.1:${i + 1}`);
    const decisions = proxy.decisions();
    assert.equal(decisions.length, 2);
    assert.equal(proxy.droppedDecisions, 1);
    (decisions[0] as { reason: string }).reason = "changed";
    assert.notEqual(proxy.decisions()[0].reason, "changed");
  } finally {
    await proxy.close();
  }
});

Deno.test("proxy: a slow reader gets every byte, in order", async () => {
  const size = 8 * 1024 * 1024;
  const target = new Target(async (conn) => {
    const chunk = new Uint8Array(256 * 1024);
    for (let sent = 0; sent < size; sent += chunk.length) {
      for (let i = 0; i < chunk.length; i++) chunk[i] = (sent + i) % 253;
      await writeAll(conn, chunk);
    }
  });
  const proxy = startProxy({ rules: rules([`127.0.0.1:${target.port}`]) });
  try {
    const [client, head] = await connectVia(proxy, `127.0.0.1:${target.port}`);
    assert.equal(head.status, 200);
    const small = new Uint8Array(4096);
    let at = 0;
    for (let reads = 0;; reads++) {
      const n = await client.conn.read(small);
      if (n === null) break;
      for (let i = 0; i < n; i++) assert.equal(small[i], (at + i) % 253);
      at += n;
      // Let the proxy run ahead and find the reader's buffer full.
      if (reads % 64 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    client.close();
    assert.equal(at, size);
    assert.equal(last(proxy).bytesDown, size);
  } finally {
    await proxy.close();
    await target.close();
  }
});

Deno.test("proxy: close() does not wait for a resolver that never answers", async () => {
  let asked!: () => void;
  const resolving = new Promise<void>((resolve) => asked = resolve);
  const proxy = startProxy({
    rules: rules(["hang.test:8080"]),
    resolve: () => {
      asked();
      return new Promise<string[]>(() => {});
    },
  });
  const client = await Client.open(proxy.port);
  try {
    await client.write("CONNECT hang.test:8080 HTTP/1.1\r\n\r\n");
    await resolving;
    await proxy.close();
    assert.equal(await client.readToEnd(), "");
  } finally {
    client.close();
    await proxy.close();
  }
});

Deno.test("proxy: resolving and connecting share the connect timeout", async () => {
  const proxy = startProxy({
    rules: rules(["slow.test:8080"]),
    resolve: () => new Promise<string[]>(() => {}),
    connectTimeoutMs: 50,
  });
  try {
    const answer = await refusedVia(proxy, "slow.test:8080");
    assert.equal(answer.status, 502);
    assert.equal(
      answer.headers.get("X-Llmx-Sandbox-Reason"),
      "could not resolve slow.test: timed out after 50 ms",
    );
  } finally {
    await proxy.close();
  }
});

Deno.test("proxy: a plain HTTP server that ends without a response gets 502", async (t) => {
  for (const [what, behaviour] of [["closes", closeAtOnce], ["resets", reset]] as const) {
    await t.step(`the server ${what}`, async () => {
      const target = new Target(behaviour);
      const proxy = startProxy({ rules: rules([`127.0.0.1:${target.port}`]) });
      try {
        const [head] = await httpVia(
          proxy,
          `GET http://127.0.0.1:${target.port}/ HTTP/1.1\r\nX-Pad: ${"p".repeat(100)}\r\n\r\n`,
        );
        assert.equal(head.status, 502);
        assert.match(head.headers.get("X-Llmx-Sandbox-Reason")!, /^127\.0\.0\.1:\d+ /);
        assert.equal(await target.settle(), 1);
        assert.ok(last(proxy).error);
      } finally {
        await proxy.close();
        await target.close();
      }
    });
  }
});

Deno.test("proxy: a flood of refusals past maxDecisions does not hide an allowed connection", async () => {
  const target = new Target(echo);
  const proxy = startProxy({ rules: rules([`127.0.0.1:${target.port}`]), maxDecisions: 2 });
  try {
    for (let i = 0; i < 5; i++) await refusedVia(proxy, `127.0.0.1:${i + 1}`);
    await pingVia(proxy, `127.0.0.1:${target.port}`);
    const decisions = proxy.decisions();
    assert.deepEqual(decisions.map((decision) => decision.allowed), [false, false, true]);
    assert.equal(proxy.droppedDecisions, 3);
  } finally {
    await proxy.close();
    await target.close();
  }
});

Deno.test("proxy: a name resolving to this machine's own address is refused unless named", async () => {
  // A documentation address stands for the machine's own public one; nothing is connected to.
  const resolve = names({ "self.test": ["198.51.100.7"] });
  const proxy = startProxy({
    rules: { ...rules(["self.test:8080"]), ownAddresses: ["198.51.100.7", "fe80::1%eth0"] },
    resolve,
  });
  try {
    const answer = await refusedVia(proxy, "self.test:8080");
    assert.equal(answer.status, 403);
    assert.equal(
      answer.headers.get("X-Llmx-Sandbox-Reason"),
      "self.test resolves to this machine's own address (198.51.100.7); allow that address by " +
        "name: network-domain=198.51.100.7:8080",
    );
  } finally {
    await proxy.close();
  }
});

Deno.test("proxy: a client whose socket is another uid's is not served", async (t) => {
  const target = new Target(echo);
  const allow = rules([`127.0.0.1:${target.port}`]);
  try {
    await t.step("positive control: our own uid is served", async () => {
      const proxy = startProxy({ rules: allow, clientUid: Deno.uid()! });
      try {
        await pingVia(proxy, `127.0.0.1:${target.port}`);
      } finally {
        await proxy.close();
      }
    });
    await t.step("another uid: closed without an answer, nothing recorded", async () => {
      const proxy = startProxy({ rules: allow, clientUid: (Deno.uid()! + 4242) % 65534 });
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
        try {
          await writeAll(
            conn,
            new TextEncoder().encode(`CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\n\r\n`),
          );
          const read = await conn.read(new Uint8Array(64)).catch(() => null);
          assert.equal(read, null, "no answer");
        } finally {
          conn.close();
        }
        assert.deepEqual(proxy.decisions(), []);
        assert.equal(await target.settle(), 1, "only the positive control's");
      } finally {
        await proxy.close();
      }
    });
  } finally {
    await target.close();
  }
});
