/**
 * The built-in proxy behind `network-domain=PATTERN`: it listens on 127.0.0.1 for the run of one
 * command, takes HTTP/1.1 `CONNECT` tunnels, absolute-form plain HTTP requests and SOCKS5
 * `CONNECT`, decides each by name and then by every address the name resolved to
 * (`policy/network_domain.ts`), connects to the address it checked and relays the bytes.
 *
 * @module
 */

import {
  decideAddresses,
  decideConnection,
  type DomainRules,
  formatHostPort,
  normalizeIpAddress,
  parseHostPort,
} from "../policy/network_domain.ts";

/** One request or tunnel the proxy decided on, with the bytes it relayed. */
export interface NetworkDecision {
  /** How the client asked: an HTTP `CONNECT` tunnel, a plain HTTP request, or SOCKS5. */
  readonly protocol: "connect" | "http" | "socks5";
  /** The host as the client named it, normalised (IPv6 without brackets). */
  readonly host: string;
  /** The port. */
  readonly port: number;
  /** Whether the policy allowed it (see `error` for an allowed target that was unreachable). */
  readonly allowed: boolean;
  /** One line: `allowed by network-domain=…`, `refused by --deny-domain …`, … */
  readonly reason: string;
  /** The canonical pattern that decided, when one did. */
  readonly rule?: string;
  /** For a refusal a permission could lift, that permission (`network-domain=host:8080`). */
  readonly suggestion?: string;
  /** The address connected to. */
  readonly address?: string;
  /** Why an allowed target could not be reached (resolution or connection failed). */
  readonly error?: string;
  /** Bytes relayed from the client to the target (request heads included for plain HTTP). */
  readonly bytesUp: number;
  /** Bytes relayed from the target to the client. */
  readonly bytesDown: number;
}

/** How the proxy is started. */
export interface ProxyOptions {
  /** The allow and deny patterns. */
  readonly rules: DomainRules;
  /**
   * Resolves a host name to its addresses (tests map made-up names with it). `localhost` and IP
   * addresses are never resolved.
   * @default {getaddrinfo through `node:dns/promises` `lookup`, which honours /etc/hosts}
   */
  readonly resolve?: (host: string) => Promise<string[]>;
  /**
   * Called once per refused `host:port` (policy refusals only, not unreachable targets), for a
   * one-line hint; an exception it throws is ignored.
   */
  readonly onRefused?: (decision: NetworkDecision) => void;
  /**
   * Serve only clients whose socket belongs to this uid (the command's), as
   * `/proc/net/tcp` says: another user of the machine must not borrow the run's network.
   * @default any client
   */
  readonly clientUid?: number;
  /**
   * The largest request head (request line and headers) or SOCKS5 greeting, in bytes.
   * @default {32768}
   */
  readonly maxHeadBytes?: number;
  /**
   * How long a client has to send its whole request head, in milliseconds.
   * @default {30000}
   */
  readonly headTimeoutMs?: number;
  /**
   * Client connections served at once; more wait in the kernel's accept queue.
   * @default {256}
   */
  readonly maxConnections?: number;
  /**
   * How long resolving and connecting to a target may take together, in milliseconds.
   * @default {10000}
   */
  readonly connectTimeoutMs?: number;
  /**
   * How many decisions `decisions()` keeps; later refusals are counted in `droppedDecisions`,
   * while allowed connections are kept up to as many again (a flood of refusals must not hide
   * one that got through).
   * @default {10000}
   */
  readonly maxDecisions?: number;
  /**
   * Whether SOCKS5 is served on the same port (told apart by its first byte, 0x05).
   * @default {true}
   */
  readonly socks5?: boolean;
}

/**
 * The uid that owns the client's end of a connection to the proxy on 127.0.0.1, from the
 * kernel's socket table (`/proc/net/tcp`: the line whose local address is the client's and
 * whose remote address is the proxy's), or `undefined` when it cannot be told.
 */
async function clientUid(client: Deno.Conn, proxyPort: number): Promise<number | undefined> {
  const remote = client.remoteAddr as Deno.NetAddr;
  const end = (port: number) => `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const [local, peer] = [end(remote.port), end(proxyPort)];
  let table: string;
  try {
    table = await Deno.readTextFile("/proc/net/tcp");
  } catch {
    return undefined;
  }
  for (const line of table.split("\n")) {
    // "sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ..."
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && fields[2] === peer) return Number(fields[7]);
  }
  return undefined;
}

/** A running proxy. */
export interface DomainProxy {
  /** The TCP port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** Decisions not kept because `maxDecisions` was reached. */
  readonly droppedDecisions: number;
  /**
   * Every request and tunnel so far, in order, with the bytes relayed up to now.
   * @returns Copies: later traffic does not change them.
   */
  decisions(): NetworkDecision[];
  /**
   * Stops listening, ends every open connection and tunnel, and resolves when all are gone.
   * Calling it again returns the same promise.
   */
  close(): Promise<void>;
}

// A relay buffer starts small (most tunnels are idle or chatty) and grows while reads fill it
// (a bulk transfer): 256 KiB reads relay loopback traffic about 1.5 times faster than 64 KiB.
const RELAY_BUFFER_FIRST = 16 * 1024;
const RELAY_BUFFER_MAX = 256 * 1024;
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;
// After an error response the proxy reads (and drops) what the client still sends, so that
// closing with unread data does not reset the connection and destroy the response in flight.
const LINGER_MS = 1000;
const LINGER_BYTES = 1024 * 1024;

// Headers that concern one hop (RFC 9110 section 7.6.1), plus the proxy's own. Transfer-Encoding
// stays: bodies pass through as they are, framing included.
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "upgrade",
]);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
// The proxy's own copy of a decision, updated as bytes flow.
type Entry = Mutable<NetworkDecision>;
type Timer = ReturnType<typeof setTimeout>;

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly socksReply: number,
  ) {
    super(reason);
  }
}

/**
 * Starts the proxy on 127.0.0.1 and a port the kernel picks. Starting is cheap: the resolver is
 * loaded on the first name that needs it.
 *
 * @example A refused CONNECT
 * ```ts
 * import { startProxy } from "./proxy.ts";
 * import { parseDomainPattern } from "../policy/network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * const proxy = startProxy({ rules: { allow: [parseDomainPattern("example.com")], deny: [] } });
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
 * await conn.write(new TextEncoder().encode("CONNECT evil.example:443 HTTP/1.1\r\n\r\n"));
 * const answer = new Uint8Array(1024);
 * const n = await conn.read(answer);
 * assert.match(new TextDecoder().decode(answer.subarray(0, n ?? 0)), /^HTTP\/1.1 403 /);
 * conn.close();
 * await proxy.close();
 * const [decision] = proxy.decisions();
 * assert.equal(decision.reason, "no network-domain permission matches evil.example:443");
 * ```
 *
 * @param options The rules, and limits that have defaults.
 * @returns The running proxy.
 */
export function startProxy(options: ProxyOptions): DomainProxy {
  return new Proxy(options);
}

class Proxy implements DomainProxy {
  readonly port: number;
  readonly #options: ProxyOptions;
  readonly #listener: Deno.TcpListener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #timers = new Set<Timer>();
  readonly #aborts = new Set<AbortController>();
  readonly #decisions: Entry[] = [];
  /** Entries in `#decisions`; one made past the limit is kept all the same once it is allowed. */
  readonly #kept = new WeakSet<Entry>();
  #keptAllowedPastLimit = 0;
  readonly #refusedSeen = new Set<string>();
  readonly #acceptLoop: Promise<void>;
  readonly #maxHead: number;
  readonly #headTimeout: number;
  readonly #maxConnections: number;
  readonly #connectTimeout: number;
  readonly #maxDecisions: number;
  #dropped = 0;
  #active = 0;
  #slotFree: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: ProxyOptions) {
    this.#options = options;
    this.#maxHead = options.maxHeadBytes ?? 32 * 1024;
    this.#headTimeout = options.headTimeoutMs ?? 30_000;
    this.#maxConnections = options.maxConnections ?? 256;
    this.#connectTimeout = options.connectTimeoutMs ?? 10_000;
    this.#maxDecisions = options.maxDecisions ?? 10_000;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = this.#listener.addr.port;
    this.#acceptLoop = this.#accept().catch(() => {});
  }

  get droppedDecisions(): number {
    return this.#dropped;
  }

  decisions(): NetworkDecision[] {
    return this.#decisions.map((decision) => ({ ...decision }));
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    for (const abort of this.#aborts) abort.abort();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const conn of this.#conns) closeQuietly(conn);
    this.#conns.clear();
    this.#slotFree?.();
    await this.#acceptLoop;
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  async #accept(): Promise<void> {
    while (this.#closing === undefined) {
      while (this.#active >= this.#maxConnections && this.#closing === undefined) {
        await new Promise<void>((resolve) => this.#slotFree = resolve);
      }
      if (this.#closing !== undefined) return;
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#closing !== undefined || error instanceof Deno.errors.BadResource) return;
        // EMFILE and the like: this client is lost; pause rather than spin on the next.
        await new Promise<void>((resolve) => {
          this.#slotFree = resolve;
          this.#timer(100, resolve);
        });
        continue;
      }
      if (!this.#track(conn)) return;
      this.#active++;
      const task = this.#serve(conn).catch(() => {}).finally(() => {
        this.#release(conn);
        this.#active--;
        const free = this.#slotFree;
        this.#slotFree = undefined;
        free?.();
      });
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  // Every connection is tracked so that close() can end it; one opened after close() is closed
  // at once.
  #track(conn: Deno.Conn): boolean {
    if (this.#closing !== undefined) {
      closeQuietly(conn);
      return false;
    }
    this.#conns.add(conn);
    return true;
  }

  #release(conn: Deno.Conn): void {
    if (this.#conns.delete(conn)) closeQuietly(conn);
  }

  #timer(ms: number, fire: () => void): Timer {
    const id = setTimeout(() => {
      this.#timers.delete(id);
      fire();
    }, ms);
    this.#timers.add(id);
    return id;
  }

  #clearTimer(id: Timer): void {
    clearTimeout(id);
    this.#timers.delete(id);
  }

  async #serve(client: Deno.Conn): Promise<void> {
    const uid = this.#options.clientUid;
    if (uid !== undefined && await clientUid(client, this.port) !== uid) return;
    const head = new Uint8Array(this.#maxHead);
    let length = 0;
    let timedOut = false;
    const timer = this.#timer(this.#headTimeout, () => {
      timedOut = true;
      this.#release(client);
    });
    try {
      const first = await client.read(head);
      if (first === null) return;
      length = first;
      if (head[0] === 0x05 && this.#options.socks5 !== false) {
        await this.#socks(client, head, length, () => this.#clearTimer(timer));
        return;
      }
      let end = findHeadEnd(head, 0, length);
      while (end === -1) {
        if (!methodSoFar(head, length)) {
          // TLS or another protocol sent straight to the proxy: no need to wait for a head.
          this.#clearTimer(timer);
          await this.#answer(client, 400, "Bad Request", {
            reason: "not an HTTP request or a SOCKS5 greeting",
          });
          return;
        }
        if (length === head.length) {
          this.#clearTimer(timer);
          await this.#answer(client, 431, "Request Header Fields Too Large", {
            reason: `the request head is larger than ${this.#maxHead} bytes`,
          });
          return;
        }
        const n = await client.read(head.subarray(length));
        if (n === null) return;
        const from = Math.max(0, length - 3);
        length += n;
        end = findHeadEnd(head, from, length);
      }
      this.#clearTimer(timer);
      await this.#http(client, head, end, length);
    } catch (error) {
      if (timedOut) return;
      throw error;
    } finally {
      this.#clearTimer(timer);
    }
  }

  async #http(client: Deno.Conn, head: Uint8Array, end: number, length: number): Promise<void> {
    const parsed = parseRequestHead(latin1(head.subarray(0, end)));
    if (typeof parsed === "string") {
      await this.#answer(client, 400, "Bad Request", { reason: parsed });
      return;
    }
    const rest = head.subarray(end, length);
    if (parsed.method === "CONNECT") {
      const target = parseHostPort(parsed.target);
      if (target === undefined) {
        await this.#answer(client, 400, "Bad Request", {
          reason: `malformed CONNECT target ${describe(parsed.target)} (expected host:port)`,
        });
        return;
      }
      const record = this.#record("connect", target.host, target.port);
      const upstream = await this.#open(record, client);
      if (upstream === undefined) return;
      try {
        await writeAll(client, encode("HTTP/1.1 200 Connection established\r\n\r\n"));
        if (rest.length > 0) {
          await writeAll(upstream, rest);
          record.bytesUp += rest.length;
        }
        await this.#tunnel(client, upstream, record);
      } finally {
        this.#release(upstream);
      }
      return;
    }
    const request = toOriginForm(parsed);
    if (typeof request === "string") {
      await this.#answer(client, 400, "Bad Request", { reason: request });
      return;
    }
    const record = this.#record("http", request.host, request.port);
    const upstream = await this.#open(record, client);
    if (upstream === undefined) return;
    try {
      const out = encode(request.head);
      await writeAll(upstream, out);
      record.bytesUp += out.length;
      if (rest.length > 0) {
        await writeAll(upstream, rest);
        record.bytesUp += rest.length;
      }
      await this.#exchange(client, upstream, record);
    } finally {
      this.#release(upstream);
    }
  }

  #record(protocol: NetworkDecision["protocol"], host: string, port: number): Entry {
    const record: Entry = {
      protocol,
      host,
      port,
      allowed: false,
      reason: "",
      bytesUp: 0,
      bytesDown: 0,
    };
    if (this.#decisions.length < this.#maxDecisions) this.#keep(record);
    return record;
  }

  #keep(record: Entry): void {
    this.#decisions.push(record);
    this.#kept.add(record);
  }

  // Past `maxDecisions`, refusals are counted only, while every allowed connection is still
  // kept (up to as many again): a flood of refusals must not hide one that got through.
  #allowed(record: Entry): void {
    if (this.#kept.has(record)) return;
    if (this.#keptAllowedPastLimit < this.#maxDecisions) {
      this.#keptAllowedPastLimit++;
      this.#keep(record);
    } else {
      this.#dropped++;
    }
  }

  // Decides, resolves, checks every address, connects to a checked one. Returns the connection,
  // or undefined after answering the client (an HTTP status, or a SOCKS5 reply when `socks`).
  async #open(
    record: Entry,
    client: Deno.Conn,
    socks = false,
  ): Promise<Deno.Conn | undefined> {
    try {
      return await this.#connectTarget(record);
    } catch (error) {
      const refusal = error instanceof Refusal
        ? error
        : new Refusal(502, `could not reach ${target(record)}: ${message(error)}`, 1);
      if (refusal.status !== 403) record.error ??= refusal.reason;
      if (socks) {
        await writeAll(client, socksReply(refusal.socksReply));
        await this.#linger(client);
      } else {
        const [status, text] = refusal.status === 403 ? [403, "Forbidden"] : [502, "Bad Gateway"];
        await this.#answer(client, status, text, { reason: refusal.reason });
      }
      return undefined;
    }
  }

  async #connectTarget(record: Entry): Promise<Deno.Conn> {
    const { rules } = this.#options;
    const byName = decideConnection(rules, record.host, record.port);
    if (!byName.allowed) throw this.#refuse(record, byName);
    record.allowed = true;
    record.reason = byName.reason;
    if (byName.rule !== undefined) record.rule = byName.rule;
    this.#allowed(record);

    const abort = new AbortController();
    this.#aborts.add(abort);
    if (this.#closing !== undefined) abort.abort();
    const timer = this.#timer(this.#connectTimeout, () => abort.abort());
    try {
      let addresses: string[];
      if (normalizeIpAddress(record.host) !== undefined) addresses = [record.host];
      else if (record.host === "localhost") addresses = ["127.0.0.1", "::1"];
      else {
        try {
          addresses = await abortable(this.#resolve(record.host), abort.signal);
        } catch (error) {
          throw new Refusal(
            502,
            abort.signal.aborted
              ? `could not resolve ${record.host}: timed out after ${this.#connectTimeout} ms`
              : `could not resolve ${record.host}: ${message(error)}`,
            4,
          );
        }
      }
      const checked = decideAddresses(rules, record.host, record.port, addresses);
      if (!checked.allowed) throw this.#refuse(record, checked);
      const failures: string[] = [];
      for (const address of checked.addresses) {
        if (abort.signal.aborted) break;
        try {
          // The address that was checked, never the name: resolving again could give another
          // answer (DNS rebinding).
          const conn = await Deno.connect({
            hostname: address.includes(":") ? `[${address}]` : address,
            port: record.port,
            signal: abort.signal,
          });
          if (!this.#track(conn)) throw new Refusal(502, "the proxy is closing", 1);
          try {
            conn.setNoDelay(true);
          } catch {
            // Not fatal.
          }
          record.address = address;
          return conn;
        } catch (error) {
          if (error instanceof Refusal) throw error;
          failures.push(`${address}: ${abort.signal.aborted ? "timed out" : message(error)}`);
        }
      }
      const why = abort.signal.aborted && failures.length === 0
        ? `timed out after ${this.#connectTimeout} ms`
        : failures.join("; ");
      throw new Refusal(502, `could not connect to ${target(record)} (${why})`, 5);
    } finally {
      this.#clearTimer(timer);
      this.#aborts.delete(abort);
    }
  }

  #refuse(
    record: Entry,
    decision: { reason: string; rule?: string; suggestion?: string },
  ): Refusal {
    if (!this.#kept.has(record) && !record.allowed) this.#dropped++;
    record.allowed = false;
    record.reason = decision.reason;
    delete record.rule;
    if (decision.rule !== undefined) record.rule = decision.rule;
    if (decision.suggestion !== undefined) record.suggestion = decision.suggestion;
    const key = target(record);
    if (this.#options.onRefused !== undefined && !this.#refusedSeen.has(key)) {
      this.#refusedSeen.add(key);
      try {
        const result: unknown = this.#options.onRefused({ ...record });
        if (result instanceof Promise) result.catch(() => {});
      } catch {
        // A hint that could not be printed must not break the connection's answer.
      }
    }
    return new Refusal(403, decision.reason, 2);
  }

  #resolve(host: string): Promise<string[]> {
    return (this.#options.resolve ?? systemResolve)(host);
  }

  // Relays both ways until both sides have finished; a side that ends its writing (half-close)
  // still receives the rest. An error on either side ends both.
  async #tunnel(client: Deno.Conn, upstream: Deno.Conn, record: Entry): Promise<void> {
    const abort = () => {
      this.#release(client);
      this.#release(upstream);
    };
    const up = pump(client, upstream, (n) => record.bytesUp += n)
      .then(() => upstream.closeWrite());
    const down = pump(upstream, client, (n) => record.bytesDown += n)
      .then(() => client.closeWrite());
    up.catch(abort);
    down.catch(abort);
    await Promise.allSettled([up, down]);
    this.#release(upstream);
  }

  // One plain HTTP exchange: the request body goes up as it comes; the response head comes
  // back with `Connection: close` (one request per client connection), then the rest as is.
  async #exchange(client: Deno.Conn, upstream: Deno.Conn, record: Entry): Promise<void> {
    const abort = () => {
      this.#release(client);
      this.#release(upstream);
    };
    const up = pump(client, upstream, (n) => record.bytesUp += n)
      .then(() => upstream.closeWrite());
    up.catch(abort);
    try {
      const buffer = new Uint8Array(MAX_RESPONSE_HEAD_BYTES);
      let length = 0;
      for (;;) {
        let end = findHeadEnd(buffer, 0, length);
        while (end === -1) {
          if (length === buffer.length) {
            throw new Refusal(502, `${target(record)} sent a response head that is too large`, 1);
          }
          const n = await upstream.read(buffer.subarray(length));
          if (n === null) {
            throw new Refusal(502, `${target(record)} closed the connection without a response`, 1);
          }
          const from = Math.max(0, length - 3);
          length += n;
          end = findHeadEnd(buffer, from, length);
        }
        const { head, interim } = rewriteResponseHead(latin1(buffer.subarray(0, end)));
        if (head === undefined) {
          throw new Refusal(502, `${target(record)} sent a malformed response`, 1);
        }
        const bytes = encode(head);
        await writeAll(client, bytes);
        record.bytesDown += bytes.length;
        buffer.copyWithin(0, end, length);
        length -= end;
        if (!interim) break;
      }
      if (length > 0) {
        await writeAll(client, buffer.subarray(0, length));
        record.bytesDown += length;
      }
      await pump(upstream, client, (n) => record.bytesDown += n);
      await client.closeWrite();
      // The client reads the response to its end and hangs up; until then (or a second), what
      // it still sends goes up, so that closing early does not reset the response away.
      const timer = this.#timer(LINGER_MS, abort);
      await up.catch(() => {});
      this.#clearTimer(timer);
    } catch (error) {
      // Before any byte of a response the client can still be told why; after, only cut off.
      if (record.bytesDown === 0) {
        const reason = error instanceof Refusal
          ? error.reason
          : `${target(record)} failed before a response: ${message(error)}`;
        record.error = reason;
        this.#release(upstream);
        await this.#answer(client, 502, "Bad Gateway", { reason });
      }
    } finally {
      abort();
      await up.catch(() => {});
    }
  }

  // An error answer with the reason in a header and the body, then a lingering close.
  async #answer(
    client: Deno.Conn,
    status: number,
    text: string,
    { reason }: { reason: string },
  ): Promise<void> {
    const safe = headerSafe(reason);
    const body = encode(`llmx-sandbox: ${safe}\n`);
    const head = `HTTP/1.1 ${status} ${text}\r\n` +
      `X-Llmx-Sandbox-Reason: ${safe}\r\n` +
      "Content-Type: text/plain; charset=utf-8\r\n" +
      `Content-Length: ${body.length}\r\n` +
      "Connection: close\r\n\r\n";
    try {
      await writeAll(client, concat(encode(head), body));
    } catch {
      return; // The client is gone.
    }
    await this.#linger(client);
  }

  async #linger(client: Deno.Conn): Promise<void> {
    const timer = this.#timer(LINGER_MS, () => this.#release(client));
    try {
      await client.closeWrite();
      const sink = new Uint8Array(16 * 1024);
      let drained = 0;
      while (drained < LINGER_BYTES) {
        const n = await client.read(sink);
        if (n === null) break;
        drained += n;
      }
    } catch {
      // Reset or closed: nothing more to wait for.
    } finally {
      this.#clearTimer(timer);
      this.#release(client);
    }
  }

  // SOCKS5 (RFC 1928): no authentication, CONNECT only; the same decisions as CONNECT.
  async #socks(
    client: Deno.Conn,
    buffer: Uint8Array,
    length: number,
    headDone: () => void,
  ): Promise<void> {
    const need = async (n: number): Promise<boolean> => {
      while (length < n) {
        if (n > buffer.length) return false;
        const read = await client.read(buffer.subarray(length));
        if (read === null) return false;
        length += read;
      }
      return true;
    };
    if (!await need(2) || !await need(2 + buffer[1])) return;
    const methods = buffer.subarray(2, 2 + buffer[1]);
    if (!methods.includes(0)) {
      await writeAll(client, Uint8Array.of(5, 0xff));
      return;
    }
    await writeAll(client, Uint8Array.of(5, 0));
    let at = 2 + buffer[1];
    if (!await need(at + 5)) return;
    const [version, command, , type] = buffer.subarray(at, at + 4);
    if (version !== 5) return;
    if (command !== 1) {
      await writeAll(client, socksReply(7));
      return;
    }
    let host: string | undefined;
    at += 4;
    if (type === 1) {
      if (!await need(at + 6)) return;
      host = buffer.subarray(at, at + 4).join(".");
      at += 4;
    } else if (type === 4) {
      if (!await need(at + 18)) return;
      const groups: string[] = [];
      for (let i = 0; i < 16; i += 2) {
        groups.push(((buffer[at + i] << 8) | buffer[at + i + 1]).toString(16));
      }
      host = normalizeIpAddress(groups.join(":"));
      at += 16;
    } else if (type === 3) {
      const size = buffer[at];
      if (!await need(at + 1 + size + 2)) return;
      host = latin1(buffer.subarray(at + 1, at + 1 + size));
      at += 1 + size;
    } else {
      await writeAll(client, socksReply(8));
      return;
    }
    const port = (buffer[at] << 8) | buffer[at + 1];
    at += 2;
    headDone();
    const normalized = host === undefined ? undefined : parseHostPort(
      `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`,
    );
    const record = this.#record("socks5", normalized?.host ?? printable(host ?? ""), port);
    const upstream = await this.#open(record, client, true);
    if (upstream === undefined) return;
    try {
      await writeAll(client, socksReply(0));
      if (length > at) {
        await writeAll(upstream, buffer.subarray(at, length));
        record.bytesUp += length - at;
      }
      await this.#tunnel(client, upstream, record);
    } finally {
      this.#release(upstream);
    }
  }
}

let dnsModule: Promise<typeof import("node:dns/promises")> | undefined;

// Loaded on the first name: node:dns costs milliseconds that a run without names never pays.
async function systemResolve(host: string): Promise<string[]> {
  dnsModule ??= import("node:dns/promises");
  const { lookup } = await dnsModule;
  const found = await lookup(host, { all: true });
  return found.map((entry) => entry.address);
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) {
      promise.catch(() => {});
      reject(new Error("aborted"));
      return;
    }
    const onAbort = () => reject(new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

async function pump(src: Deno.Conn, dst: Deno.Conn, count: (n: number) => void): Promise<void> {
  let buffer = new Uint8Array(RELAY_BUFFER_FIRST);
  for (;;) {
    const n = await src.read(buffer);
    if (n === null) return;
    await writeAll(dst, buffer.subarray(0, n));
    count(n);
    if (n === buffer.length && buffer.length < RELAY_BUFFER_MAX) {
      buffer = new Uint8Array(buffer.length * 2);
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

// Whether the bytes so far can start an HTTP request: a method token, then a space.
function methodSoFar(buffer: Uint8Array, length: number): boolean {
  for (let i = 0; i < length; i++) {
    if (buffer[i] === 32) return i > 0;
    if (!TOKEN_BYTE[buffer[i]]) return false;
  }
  return true;
}

const TOKEN_BYTE: readonly boolean[] = Array.from(
  { length: 256 },
  (_, byte) => byte < 128 && /^[!#$%&'*+.^_`|~0-9A-Za-z-]$/.test(String.fromCharCode(byte)),
);

function findHeadEnd(buffer: Uint8Array, from: number, length: number): number {
  for (let i = from; i + 3 < length; i++) {
    if (
      buffer[i] === 13 && buffer[i + 1] === 10 && buffer[i + 2] === 13 && buffer[i + 3] === 10
    ) return i + 4;
  }
  return -1;
}

interface RequestHead {
  method: string;
  target: string;
  version: string;
  headers: [string, string][];
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function parseRequestHead(text: string): RequestHead | string {
  const lines = text.slice(0, -4).split("\r\n");
  const line = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([^\s]+) HTTP\/(1\.[01])$/.exec(lines[0]);
  if (line === null) return `malformed request line ${describe(lines[0])}`;
  const headers: [string, string][] = [];
  for (const header of lines.slice(1)) {
    const colon = header.indexOf(":");
    const name = header.slice(0, colon);
    if (colon <= 0 || !TOKEN.test(name) || /[\r\n\0]/.test(header)) {
      return `malformed header line ${describe(header)}`;
    }
    headers.push([name, header.slice(colon + 1).trim()]);
  }
  return { method: line[1], target: line[2], version: line[3], headers };
}

interface OriginRequest {
  host: string;
  port: number;
  head: string;
}

function toOriginForm(request: RequestHead): OriginRequest | string {
  const { method, target: url, version, headers } = request;
  if (/^https:\/\//i.test(url)) return "send https:// requests through a CONNECT tunnel";
  if (!/^http:\/\//i.test(url)) {
    return `this is a proxy: expected an absolute http:// URL or CONNECT, not ${describe(url)}`;
  }
  const afterScheme = url.slice(7);
  const stop = afterScheme.search(/[/?#]/);
  const authority = stop === -1 ? afterScheme : afterScheme.slice(0, stop);
  let path = stop === -1 ? "/" : afterScheme.slice(stop);
  if (authority.includes("@")) return "a URL with a user name or password is not forwarded";
  path = path.split("#")[0];
  if (path.startsWith("?")) path = `/${path}`;
  if (path === "") path = "/";
  const withPort = /:[0-9]+$/.test(authority) && !authority.endsWith("]")
    ? authority
    : `${authority}:80`;
  const hostPort = parseHostPort(withPort);
  if (hostPort === undefined) return `malformed host in ${describe(url)}`;
  const names = headers.map(([name]) => name.toLowerCase());
  if (names.includes("content-length") && names.includes("transfer-encoding")) {
    return "both Content-Length and Transfer-Encoding: ambiguous request";
  }
  const listed = new Set<string>();
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== "connection") continue;
    for (const token of value.split(",")) listed.add(token.trim().toLowerCase());
  }
  let head = `${method} ${path} HTTP/${version}\r\n`;
  head += `Host: ${formatHostPort(hostPort.host, hostPort.port).replace(/:80$/, "")}\r\n`;
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed.has(lower) || lower === "host") continue;
    head += `${name}: ${value}\r\n`;
  }
  head += "Connection: close\r\n\r\n";
  return { host: hostPort.host, port: hostPort.port, head };
}

// The response head with its hop-by-hop headers replaced by `Connection: close`; interim (1xx)
// heads pass as they are, and another head follows them.
function rewriteResponseHead(text: string): { head: string | undefined; interim: boolean } {
  const lines = text.slice(0, -4).split("\r\n");
  const status = /^HTTP\/1\.[01] ([0-9]{3})(?: .*)?$/.exec(lines[0]);
  if (status === null) return { head: undefined, interim: false };
  const code = Number(status[1]);
  if (code >= 100 && code < 200 && code !== 101) return { head: text, interim: true };
  const listed = new Set<string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (line.slice(0, colon).trim().toLowerCase() !== "connection") continue;
    for (const token of line.slice(colon + 1).split(",")) listed.add(token.trim().toLowerCase());
  }
  const kept = lines.slice(1).filter((line) => {
    const name = line.slice(0, line.indexOf(":")).trim().toLowerCase();
    return !HOP_BY_HOP.has(name) && !listed.has(name);
  });
  return { head: [lines[0], ...kept, "Connection: close", "", ""].join("\r\n"), interim: false };
}

function socksReply(code: number): Uint8Array {
  return Uint8Array.of(5, code, 0, 1, 0, 0, 0, 0, 0, 0);
}

function target(record: Entry): string {
  return formatHostPort(record.host, record.port);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// Client-chosen text in a reason: quoted, bounded, printable ASCII only (reasons reach a
// terminal and a header).
function describe(value: string): string {
  return printable(JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value));
}

function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?");
}

// A reason goes into a header: printable ASCII only, bounded.
function headerSafe(text: string): string {
  return printable(text).slice(0, 1000);
}

function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return text;
}

function encode(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0xff;
  return bytes;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
