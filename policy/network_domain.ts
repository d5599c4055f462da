/**
 * Network by domain: the patterns of `network-domain=PATTERN` and `--deny-domain PATTERN`, the
 * classification of IP addresses, and the two-stage decision the built-in proxy applies to every
 * connection (the name before resolution, then every address it resolved to). Pure: the proxy
 * resolves and connects; this file only decides.
 *
 * @module
 */

/**
 * What a pattern names: one host name, every subdomain of a name (`*.example.com`, not
 * `example.com` itself), or one IP address.
 */
export type DomainPatternKind = "host" | "wildcard" | "ip";

/** A parsed `network-domain` or `--deny-domain` pattern. */
export interface DomainPattern {
  /** What the pattern names. */
  readonly kind: DomainPatternKind;
  /**
   * The host part, normalised: lower case without a trailing dot (`*.example.com` for a
   * wildcard), or an IP address in canonical form (IPv6 compressed, without brackets).
   */
  readonly host: string;
  /**
   * The ports, or `undefined` when none was given: then an allow rule allows
   * {@linkcode DEFAULT_DOMAIN_PORTS} and a deny rule denies every port.
   */
  readonly ports: readonly number[] | undefined;
}

/**
 * The ports an allow pattern without `:PORT` allows: HTTP and HTTPS.
 *
 * @example
 * ```ts
 * import { DEFAULT_DOMAIN_PORTS } from "./network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(DEFAULT_DOMAIN_PORTS, [80, 443]);
 * ```
 */
export const DEFAULT_DOMAIN_PORTS: readonly number[] = [80, 443];

/** The allow and deny patterns a decision is made with; deny wins. */
export interface DomainRules {
  /** From `network-domain=PATTERN`. */
  readonly allow: readonly DomainPattern[];
  /** From `--deny-domain PATTERN`. */
  readonly deny: readonly DomainPattern[];
  /**
   * This machine's own addresses (every interface's): a name resolving to one reaches the
   * services that listen on all interfaces, whatever range it is in, so it counts as `own`.
   * @default none
   */
  readonly ownAddresses?: readonly string[];
}

/** The verdict on one connection, with its reason on one line. */
export interface ConnectionDecision {
  /** Whether the connection may be made. */
  readonly allowed: boolean;
  /**
   * Why, for people and for the sandbox's evidence: `allowed by network-domain=x`,
   * `refused by --deny-domain x`, `no network-domain permission matches x:443`, …
   */
  readonly reason: string;
  /** The canonical text of the pattern that decided (allowed, or refused by a deny rule). */
  readonly rule?: string;
  /**
   * For a refusal that a permission could lift: that permission (`network-domain=x:8080`,
   * `network-domain=10.1.2.3`). Absent when a deny rule refused or the host is malformed.
   */
  readonly suggestion?: string;
}

/** The verdict of the address stage, with the addresses that may be connected to. */
export interface AddressDecision extends ConnectionDecision {
  /** The checked addresses, canonical, once each: connect to these only (none if refused). */
  readonly addresses: readonly string[];
}

/** What kind of network an IP address belongs to; only `public` is reachable by name alone. */
export type AddressClass =
  | "loopback"
  | "private"
  | "link-local"
  | "metadata"
  | "unspecified"
  | "multicast"
  | "reserved"
  | "own"
  | "public";

/** An IP address as bytes: 4 for IPv4, 16 for IPv6. */
export interface IpAddress {
  /** 4 or 6. */
  readonly version: 4 | 6;
  /** The address in network order. */
  readonly bytes: readonly number[];
}

/**
 * Thrown when a `network-domain` or `--deny-domain` pattern is malformed.
 *
 * @example
 * ```ts
 * import { InvalidDomainPatternError, parseDomainPattern } from "./network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => parseDomainPattern("https://example.com"), InvalidDomainPatternError);
 * ```
 */
export class InvalidDomainPatternError extends Error {
  /** The pattern as given. */
  readonly value: string;

  /**
   * Makes the error.
   * @param value The pattern as given.
   * @param reason What is wrong with it.
   */
  constructor(value: string, reason: string) {
    super(`Invalid network domain pattern ${JSON.stringify(value)}: ${reason}`);
    this.name = "InvalidDomainPatternError";
    this.value = value;
  }
}

/**
 * Parses a pattern: a host name (`registry.npmjs.org`), `*.example.com` (subdomains only), or an
 * IP address (`127.0.0.1`, `::1`, `[::1]` when a port follows), with an optional `:PORT` (or
 * `:PORT,PORT`). Host names are lower-cased and lose a trailing dot.
 *
 * @example Names, wildcards and addresses
 * ```ts
 * import { parseDomainPattern } from "./network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseDomainPattern("Registry.NPMjs.org."), {
 *   kind: "host",
 *   host: "registry.npmjs.org",
 *   ports: undefined,
 * });
 * assert.deepEqual(parseDomainPattern("*.example.com:8443"), {
 *   kind: "wildcard",
 *   host: "*.example.com",
 *   ports: [8443],
 * });
 * assert.deepEqual(parseDomainPattern("[::1]:8080"), { kind: "ip", host: "::1", ports: [8080] });
 * ```
 *
 * @param text The pattern as the user wrote it.
 * @returns The pattern, normalised.
 * @throws {InvalidDomainPatternError} When the pattern is malformed.
 */
export function parseDomainPattern(text: string): DomainPattern {
  const fail = (reason: string) => new InvalidDomainPatternError(text, reason);
  if (text === "") throw fail("it is empty");
  if (/\s/.test(text)) throw fail("it contains a space");
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    throw fail("write the host name alone, without a scheme (registry.npmjs.org, not https://…)");
  }
  if (/[/?#]/.test(text)) throw fail("write the host name alone, without a path");
  if (text.includes("@")) throw fail("a pattern names a host, without a user name");

  let hostText: string;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close === -1) throw fail("an opening [ has no closing ]");
    hostText = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== "" && !rest.startsWith(":")) throw fail("expected :PORT after ]");
    portText = rest === "" ? undefined : rest.slice(1);
    const ip = parseIpv6(hostText);
    if (ip === undefined) throw fail(`invalid IPv6 address ${JSON.stringify(hostText)}`);
    return { kind: "ip", host: formatIpAddress(ip), ports: parsePorts(portText, fail) };
  }
  if (text.split(":").length > 2) {
    const ip = parseIpv6(text);
    const lastColon = text.lastIndexOf(":");
    const prefix = text.slice(0, lastColon);
    const suffix = text.slice(lastColon + 1);
    const couldBePort = /^[1-9][0-9]{0,4}$/.test(suffix) && Number(suffix) <= 65535 &&
      parseIpv6(prefix) !== undefined;
    if (ip === undefined) {
      if (couldBePort) {
        throw fail(`write an IPv6 address in brackets to give a port: [${prefix}]:${suffix}`);
      }
      throw fail(`invalid IPv6 address ${JSON.stringify(text)}`);
    }
    if (couldBePort) {
      throw fail(
        `ambiguous: write [${text}] for that address, or [${prefix}]:${suffix} for port ${suffix}`,
      );
    }
    return { kind: "ip", host: formatIpAddress(ip), ports: undefined };
  }
  const colon = text.indexOf(":");
  hostText = colon === -1 ? text : text.slice(0, colon);
  portText = colon === -1 ? undefined : text.slice(colon + 1);
  const ports = parsePorts(portText, fail);
  if (hostText === "*") {
    throw fail("a bare * would allow every host (network-full-access does that)");
  }
  if (hostText.startsWith("*.")) {
    const rest = hostText.slice(2);
    if (rest.includes("*")) throw fail("* may only start a pattern, as in *.example.com");
    const suffix = normalizeHostName(rest);
    if (suffix === undefined) throw fail("expected a host name after *., as in *.example.com");
    if (typeof suffix !== "string") throw fail(suffix.error);
    return { kind: "wildcard", host: `*.${suffix}`, ports };
  }
  if (hostText.includes("*")) throw fail("* may only start a pattern, as in *.example.com");
  const v4 = parseIpv4(hostText);
  if (v4 !== undefined) return { kind: "ip", host: formatIpAddress(v4), ports };
  const name = normalizeHostName(hostText);
  if (name === undefined) throw fail(`invalid host name ${JSON.stringify(hostText)}`);
  if (typeof name !== "string") throw fail(name.error);
  return { kind: "host", host: name, ports };
}

function parsePorts(
  portText: string | undefined,
  fail: (reason: string) => Error,
): readonly number[] | undefined {
  if (portText === undefined) return undefined;
  const ports: number[] = [];
  for (const part of portText.split(",")) {
    if (!/^[1-9][0-9]{0,4}$/.test(part) || Number(part) > 65535) {
      throw fail(`a port must be a number from 1 to 65535, not ${JSON.stringify(part)}`);
    }
    if (!ports.includes(Number(part))) ports.push(Number(part));
  }
  return ports;
}

/**
 * Formats a pattern the way a user types it: the inverse of {@linkcode parseDomainPattern}.
 *
 * @example
 * ```ts
 * import { formatDomainPattern, parseDomainPattern } from "./network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatDomainPattern(parseDomainPattern("[0:0::1]:8080")), "[::1]:8080");
 * assert.equal(formatDomainPattern(parseDomainPattern("EXAMPLE.com.")), "example.com");
 * ```
 *
 * @param pattern The pattern.
 * @returns Its canonical text.
 */
export function formatDomainPattern(pattern: DomainPattern): string {
  if (pattern.ports === undefined) {
    return pattern.kind === "ip" && needsBrackets(pattern.host)
      ? `[${pattern.host}]`
      : pattern.host;
  }
  const host = pattern.host.includes(":") ? `[${pattern.host}]` : pattern.host;
  return `${host}:${pattern.ports.join(",")}`;
}

// An IPv6 address whose last group could be read as a port ("2001:db8::1:443") is written in
// brackets so that the canonical text parses back to the same pattern.
function needsBrackets(host: string): boolean {
  if (!host.includes(":")) return false;
  const lastColon = host.lastIndexOf(":");
  const suffix = host.slice(lastColon + 1);
  return /^[1-9][0-9]{0,4}$/.test(suffix) && Number(suffix) <= 65535 &&
    parseIpv6(host.slice(0, lastColon)) !== undefined;
}

/**
 * Writes a host and a port as a connection target: `example.com:443`, `[::1]:443`.
 *
 * @example
 * ```ts
 * import { formatHostPort } from "./network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatHostPort("::1", 443), "[::1]:443");
 * ```
 *
 * @param host A host name or an IP address (IPv6 without brackets).
 * @param port The port.
 * @returns `host:port`, with brackets around an IPv6 address.
 */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

// ---------------------------------------------------------------------------------------------
// IP addresses

/**
 * Parses an IP address literal: IPv4 in strict dotted-decimal form (no leading zeros: `010.0.0.1`
 * is octal to some resolvers), or IPv6 (with an embedded IPv4 tail, no zone, no brackets).
 *
 * @example
 * ```ts
 * import { parseIpAddress } from "./network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseIpAddress("10.0.0.1"), { version: 4, bytes: [10, 0, 0, 1] });
 * assert.equal(parseIpAddress("127.1"), undefined);
 * assert.equal(parseIpAddress("::1")?.version, 6);
 * ```
 *
 * @param text The literal.
 * @returns The address, or `undefined` when the text is not an IP address.
 */
export function parseIpAddress(text: string): IpAddress | undefined {
  return parseIpv4(text) ?? parseIpv6(text);
}

/**
 * Formats an address canonically: dotted decimal, or RFC 5952 IPv6 (lower case, the longest run
 * of zero groups compressed, an IPv4-mapped address with its IPv4 tail: `::ffff:1.2.3.4`).
 *
 * @example
 * ```ts
 * import { formatIpAddress, parseIpAddress } from "./network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatIpAddress(parseIpAddress("2001:DB8:0:0:1:0:0:1")!), "2001:db8::1:0:0:1");
 * ```
 *
 * @param ip The address.
 * @returns Its canonical text (IPv6 without brackets).
 */
export function formatIpAddress(ip: IpAddress): string {
  const b = ip.bytes;
  if (ip.version === 4) return b.join(".");
  if (isMapped(b)) return `::ffff:${b.slice(12).join(".")}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i] << 8) | b[i + 1]);
  let bestStart = -1;
  let bestLength = 1; // RFC 5952: a single zero group is not compressed.
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (from: number, to: number) =>
    groups.slice(from, to).map((g) => g.toString(16)).join(":");
  if (bestStart === -1) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/**
 * Normalises an IP address literal (brackets around IPv6 allowed).
 *
 * @example
 * ```ts
 * import { normalizeIpAddress } from "./network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(normalizeIpAddress("[0:0:0:0:0:0:0:1]"), "::1");
 * assert.equal(normalizeIpAddress("example.com"), undefined);
 * ```
 *
 * @param text The literal.
 * @returns Its canonical form, or `undefined` when it is not an IP address.
 */
export function normalizeIpAddress(text: string): string | undefined {
  const inner = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const ip = text === inner ? parseIpAddress(inner) : parseIpv6(inner);
  return ip === undefined ? undefined : formatIpAddress(ip);
}

function parseIpv4(text: string): IpAddress | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    bytes.push(n);
  }
  return { version: 4, bytes };
}

function parseIpv6(text: string): IpAddress | undefined {
  if (text.length < 2 || text.length > 45 || !/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string, tailAllowed: boolean): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (part.includes(".")) {
        const v4 = i === parts.length - 1 && tailAllowed ? parseIpv4(part) : undefined;
        if (v4 === undefined) return undefined;
        out.push((v4.bytes[0] << 8) | v4.bytes[1], (v4.bytes[2] << 8) | v4.bytes[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
        out.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  let all: number[];
  if (halves.length === 1) {
    const g = groups(text, true);
    if (g === undefined || g.length !== 8) return undefined;
    all = g;
  } else {
    const head = groups(halves[0], false);
    const tail = groups(halves[1], true);
    if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
    all = [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
  }
  const bytes: number[] = [];
  for (const g of all) bytes.push(g >> 8, g & 0xff);
  return { version: 6, bytes };
}

function isMapped(b: readonly number[]): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

// The address a rule compares: an IPv4-mapped IPv6 address reaches the same IPv4 host, so it is
// compared as that IPv4 address.
function matchKey(ip: IpAddress): string {
  return ip.version === 6 && isMapped(ip.bytes)
    ? ip.bytes.slice(12).join(".")
    : formatIpAddress(ip);
}

function inV4(b: readonly number[], prefix: readonly number[], bits: number): boolean {
  const value = ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
  const base = ((prefix[0] << 24) | (prefix[1] << 16) | (prefix[2] << 8) | prefix[3]) >>> 0;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return ((value & mask) >>> 0) === ((base & mask) >>> 0);
}

function inV6(b: readonly number[], prefix: readonly number[], bits: number): boolean {
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((b[i] & mask) !== ((prefix[i] ?? 0) & mask)) return false;
  }
  return true;
}

function v6(text: string): readonly number[] {
  return parseIpv6(text)!.bytes;
}

// Cloud instance metadata services hand out credentials to whoever asks from the machine: AWS,
// GCP, Azure, OpenStack (169.254.169.254), ECS task roles (169.254.170.2), Alibaba
// (100.100.100.200), Azure's WireServer (168.63.129.16, a public address), AWS over IPv6.
const METADATA_V4 = new Set([
  "169.254.169.254",
  "169.254.170.2",
  "100.100.100.200",
  "168.63.129.16",
]);
const METADATA_V6 = new Set(["fd00:ec2::254"]);

const V4_RANGES: readonly [readonly number[], number, AddressClass][] = [
  [[0, 0, 0, 0], 8, "unspecified"], // "this network": Linux connects 0.0.0.0 to the local host.
  [[10, 0, 0, 0], 8, "private"],
  [[100, 64, 0, 0], 10, "private"], // carrier-grade NAT, often a cloud's internal network.
  [[127, 0, 0, 0], 8, "loopback"],
  [[169, 254, 0, 0], 16, "link-local"],
  [[172, 16, 0, 0], 12, "private"],
  [[192, 0, 0, 0], 24, "reserved"],
  [[192, 88, 99, 0], 24, "reserved"],
  [[192, 168, 0, 0], 16, "private"],
  // The documentation (192.0.2/24, 198.51.100/24, 203.0.113/24) and benchmarking (198.18/15)
  // ranges count as public: intercepting resolvers answer with them (fake-IP DNS, test
  // networks), and none of them is a host's own network.
  [[224, 0, 0, 0], 4, "multicast"],
  [[240, 0, 0, 0], 4, "reserved"], // with 255.255.255.255, the limited broadcast.
];

function classifyV4(b: readonly number[]): AddressClass {
  if (METADATA_V4.has(b.join("."))) return "metadata";
  for (const [prefix, bits, kind] of V4_RANGES) if (inV4(b, prefix, bits)) return kind;
  return "public";
}

const V6_RANGES: readonly [readonly number[], number, AddressClass][] = [
  [v6("64:ff9b:1::"), 48, "private"], // local-use NAT64.
  [v6("100::"), 64, "reserved"], // discard-only.
  [v6("2001::"), 23, "reserved"], // IETF protocol assignments (Teredo among them).
  [v6("fc00::"), 7, "private"],
  [v6("fe80::"), 10, "link-local"],
  [v6("fec0::"), 10, "private"], // deprecated site-local.
  [v6("ff00::"), 8, "multicast"],
];

/**
 * Classifies an IP address. An IPv4 address inside IPv6 (IPv4-mapped `::ffff:a.b.c.d`, NAT64
 * `64:ff9b::/96`, 6to4 `2002::/16` when not public) is classified as that IPv4 address; IPv6
 * outside the global unicast range `2000::/3` is `reserved`.
 *
 * @example
 * ```ts
 * import { classifyAddress } from "./network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(classifyAddress("10.1.2.3"), "private");
 * assert.equal(classifyAddress("169.254.169.254"), "metadata");
 * assert.equal(classifyAddress("::ffff:127.0.0.1"), "loopback");
 * assert.equal(classifyAddress("2606:4700:4700::1111"), "public");
 * ```
 *
 * @param ip An IPv4 or IPv6 address (brackets allowed).
 * @returns Its class; only `public` may be reached through a host name alone.
 * @throws {TypeError} When the text is not an IP address.
 */
export function classifyAddress(ip: string): AddressClass {
  const inner = ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
  const parsed = parseIpAddress(inner);
  if (parsed === undefined) throw new TypeError(`Not an IP address: ${JSON.stringify(ip)}`);
  return classify(parsed);
}

function classify(ip: IpAddress): AddressClass {
  const b = ip.bytes;
  if (ip.version === 4) return classifyV4(b);
  if (isMapped(b) || inV6(b, v6("64:ff9b::"), 96)) return classifyV4(b.slice(12));
  if (inV6(b, v6("2002::"), 16)) {
    return classifyV4(b.slice(2, 6));
  }
  if (b.every((x) => x === 0)) return "unspecified";
  if (inV6(b, v6("::1"), 128)) return "loopback";
  if (METADATA_V6.has(formatIpAddress(ip))) return "metadata";
  for (const [prefix, bits, kind] of V6_RANGES) if (inV6(b, prefix, bits)) return kind;
  return inV6(b, v6("2000::"), 3) ? "public" : "reserved";
}

// ---------------------------------------------------------------------------------------------
// Host names

type HostTarget =
  | { readonly kind: "name"; readonly name: string }
  | { readonly kind: "ip"; readonly ip: IpAddress; readonly text: string };

// A host name lower-cased without its trailing dot, undefined when malformed, or an error for a
// name that a resolver would read as a number: `127.1`, `0x7f.1` and `2130706433` are 127.0.0.1
// to getaddrinfo, so a name ending in a numeric label must be a dotted-decimal IPv4 address.
function normalizeHostName(text: string): string | { error: string } | undefined {
  let name = text.toLowerCase();
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (name === "" || name.length > 253) return undefined;
  const labels = name.split(".");
  for (const label of labels) {
    if (!/^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(label)) return undefined;
  }
  if (/^(?:[0-9]+|0x[0-9a-f]*)$/.test(labels[labels.length - 1])) {
    return {
      error: `${
        JSON.stringify(text)
      } looks like an IPv4 address but is not one in dotted-decimal form`,
    };
  }
  return name;
}

function parseHost(host: string): HostTarget | undefined {
  if (host.startsWith("[") && host.endsWith("]")) {
    const ip = parseIpv6(host.slice(1, -1));
    return ip === undefined ? undefined : { kind: "ip", ip, text: formatIpAddress(ip) };
  }
  const ip = parseIpAddress(host);
  if (ip !== undefined) return { kind: "ip", ip, text: formatIpAddress(ip) };
  const name = normalizeHostName(host);
  return typeof name === "string" ? { kind: "name", name } : undefined;
}

/**
 * Normalises a host as a client names it (`Example.COM.`, `[::1]`): a lower-case host name
 * without its trailing dot, or a canonical IP address (IPv6 without brackets).
 *
 * @example
 * ```ts
 * import { normalizeHost } from "./network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(normalizeHost("Example.COM."), "example.com");
 * assert.equal(normalizeHost("[0::1]"), "::1");
 * assert.equal(normalizeHost("127.1"), undefined);
 * ```
 *
 * @param host The host.
 * @returns The normalised host, or `undefined` when it is neither a host name nor an address.
 */
export function normalizeHost(host: string): string | undefined {
  const target = parseHost(host);
  return target === undefined ? undefined : target.kind === "name" ? target.name : target.text;
}

/**
 * Splits a connection target (`host:port`, `[::1]:443`) as `CONNECT` and SOCKS clients give it.
 *
 * @example
 * ```ts
 * import { parseHostPort } from "./network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseHostPort("[::1]:443"), { host: "::1", port: 443 });
 * assert.deepEqual(parseHostPort("Example.com:80"), { host: "example.com", port: 80 });
 * assert.equal(parseHostPort("example.com"), undefined);
 * ```
 *
 * @param text `host:port`.
 * @returns The normalised host and the port, or `undefined` when malformed.
 */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const colon = text.lastIndexOf(":");
  if (colon === -1) return undefined;
  const hostText = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (!/^[0-9]{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  // A bare IPv6 address would be ambiguous with its port: brackets are required.
  if (hostText.includes(":") && !hostText.startsWith("[")) return undefined;
  const host = normalizeHost(hostText);
  return host === undefined ? undefined : { host, port };
}

// ---------------------------------------------------------------------------------------------
// Decisions

function hostMatches(pattern: DomainPattern, target: HostTarget): boolean {
  if (pattern.kind === "ip") {
    return target.kind === "ip" && matchKey(parseIpAddress(pattern.host)!) === matchKey(target.ip);
  }
  if (target.kind !== "name") return false;
  if (pattern.kind === "host") return target.name === pattern.host;
  return target.name.endsWith(pattern.host.slice(1));
}

function allowsPort(pattern: DomainPattern, port: number): boolean {
  return (pattern.ports ?? DEFAULT_DOMAIN_PORTS).includes(port);
}

// A deny rule without a port denies the host on every port: the safe reading of "deny".
function deniesPort(pattern: DomainPattern, port: number): boolean {
  return pattern.ports === undefined || pattern.ports.includes(port);
}

/**
 * The permission that would allow a connection: `network-domain=HOST` for ports 80 and 443,
 * `network-domain=HOST:PORT` otherwise (`[::1]:PORT` for IPv6).
 *
 * @example
 * ```ts
 * import { suggestPermission } from "./network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(suggestPermission("Example.com", 443), "network-domain=example.com");
 * assert.equal(suggestPermission("::1", 8080), "network-domain=[::1]:8080");
 * ```
 *
 * @param host The host name or IP address.
 * @param port The port.
 * @returns The permission's text, or `undefined` when the host is malformed.
 */
export function suggestPermission(host: string, port: number): string | undefined {
  const target = parseHost(host);
  if (target === undefined || !validPort(port)) return undefined;
  const text = target.kind === "name" ? target.name : target.text;
  const pattern: DomainPattern = {
    kind: target.kind === "name" ? "host" : "ip",
    host: text,
    ports: DEFAULT_DOMAIN_PORTS.includes(port) ? undefined : [port],
  };
  return `network-domain=${formatDomainPattern(pattern)}`;
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

// A host the client chose, quoted for a reason: bounded, and escaped down to printable ASCII so
// that no control sequence reaches a terminal.
function describeHost(host: string): string {
  const quoted = JSON.stringify(host.length > 100 ? `${host.slice(0, 100)}...` : host);
  return quoted.replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Decides a connection by its name, before resolution (the name stage). Deny rules win; a host
 * that is an IP address is matched against IP patterns only.
 *
 * @example
 * ```ts
 * import { decideConnection, parseDomainPattern } from "./network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * const rules = {
 *   allow: [parseDomainPattern("*.example.com")],
 *   deny: [parseDomainPattern("evil.example.com")],
 * };
 * const reason = (host: string) => decideConnection(rules, host, 443).reason;
 * assert.equal(reason("api.example.com"), "allowed by network-domain=*.example.com");
 * assert.equal(reason("evil.example.com"), "refused by --deny-domain evil.example.com");
 * assert.equal(reason("example.com"), "no network-domain permission matches example.com:443");
 * ```
 *
 * @param rules The allow and deny patterns.
 * @param host The host as the client named it.
 * @param port The port.
 * @returns The decision, with one line of reason.
 */
export function decideConnection(
  rules: DomainRules,
  host: string,
  port: number,
): ConnectionDecision {
  const target = parseHost(host);
  if (target === undefined) {
    return { allowed: false, reason: `${describeHost(host)} is not a valid host name or address` };
  }
  if (!validPort(port)) return { allowed: false, reason: `port ${port} is not a valid port` };
  const shown = target.kind === "name" ? target.name : target.text;
  const where = formatHostPort(shown, port);
  for (const pattern of rules.deny) {
    if (hostMatches(pattern, target) && deniesPort(pattern, port)) {
      const rule = formatDomainPattern(pattern);
      return { allowed: false, reason: `refused by --deny-domain ${rule}`, rule };
    }
  }
  const matching = rules.allow.filter((pattern) => hostMatches(pattern, target));
  const winner = matching.find((pattern) => allowsPort(pattern, port));
  if (winner !== undefined) {
    const rule = formatDomainPattern(winner);
    return { allowed: true, reason: `allowed by network-domain=${rule}`, rule };
  }
  const suggestion = suggestPermission(shown, port);
  if (matching.length === 0) {
    return { allowed: false, reason: `no network-domain permission matches ${where}`, suggestion };
  }
  const allows = matching.map((pattern) =>
    `network-domain=${formatDomainPattern(pattern)} allows ${
      (pattern.ports ?? DEFAULT_DOMAIN_PORTS).join(", ")
    }`
  );
  return {
    allowed: false,
    reason: `port ${port} is not allowed for ${shown} (${allows.join("; ")})`,
    suggestion,
  };
}

const CLASS_WORDS: Record<AddressClass, string> = {
  loopback: "a loopback address",
  private: "a private address",
  "link-local": "a link-local address",
  metadata: "a cloud metadata address",
  unspecified: "an unspecified address",
  multicast: "a multicast address",
  reserved: "a reserved address",
  own: "this machine's own address",
  public: "a public address",
};

/**
 * Decides a connection by its name and then by the addresses the name resolved to (the address
 * stage). Every address must be public, unless an allow pattern names that exact address (and
 * port), or the host is `localhost` allowed by the pattern `localhost` (then loopback addresses
 * are). A deny pattern that names an address refuses a name that resolves to it. Connect only to
 * the addresses returned, never resolve again: a second answer could differ (DNS rebinding).
 *
 * @example A name that resolves to a private address
 * ```ts
 * import { decideAddresses, parseDomainPattern } from "./network_domain.ts";
 * import assert from "node:assert/strict";
 *
 * const rules = { allow: [parseDomainPattern("example.internal")], deny: [] };
 * const refused = decideAddresses(rules, "example.internal", 443, ["10.1.2.3"]);
 * assert.equal(
 *   refused.reason,
 *   "example.internal resolves to a private address (10.1.2.3); " +
 *     "allow that address by name: network-domain=10.1.2.3",
 * );
 * const allowed = decideAddresses(
 *   { allow: [...rules.allow, parseDomainPattern("10.1.2.3")], deny: [] },
 *   "example.internal",
 *   443,
 *   ["10.1.2.3"],
 * );
 * assert.deepEqual(allowed.addresses, ["10.1.2.3"]);
 * ```
 *
 * @param rules The allow and deny patterns.
 * @param host The host as the client named it.
 * @param port The port.
 * @param addresses What the host resolved to (the host itself when it is an address).
 * @returns The decision; when allowed, the addresses that may be connected to.
 */
export function decideAddresses(
  rules: DomainRules,
  host: string,
  port: number,
  addresses: readonly string[],
): AddressDecision {
  const byName = decideConnection(rules, host, port);
  if (!byName.allowed) return { ...byName, addresses: [] };
  const target = parseHost(host)!;
  const shown = target.kind === "name" ? target.name : target.text;
  if (addresses.length === 0) {
    return { allowed: false, reason: `${shown} resolves to no address`, addresses: [] };
  }
  const localhostAllowed = target.kind === "name" && target.name === "localhost" &&
    rules.allow.some((p) => p.kind === "host" && p.host === "localhost" && allowsPort(p, port));
  const checked: string[] = [];
  for (const address of addresses) {
    const ip = parseIpAddress(address.startsWith("[") ? address.slice(1, -1) : address);
    if (ip === undefined) {
      return {
        allowed: false,
        reason: `${shown} resolves to ${describeHost(address)}, which is not an IP address`,
        addresses: [],
      };
    }
    const text = formatIpAddress(ip);
    const asTarget: HostTarget = { kind: "ip", ip, text };
    const deny = rules.deny.find((p) => hostMatches(p, asTarget) && deniesPort(p, port));
    if (deny !== undefined) {
      const rule = formatDomainPattern(deny);
      return {
        allowed: false,
        reason: `${shown} resolves to ${text}, refused by --deny-domain ${rule}`,
        rule,
        addresses: [],
      };
    }
    // An IPv4-mapped IPv6 address reaches the IPv4 one.
    const unmapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text)?.[1] ?? text;
    const own = rules.ownAddresses?.some((address) => {
      const mine = parseIpAddress(address.replace(/%.*$/, ""));
      return mine !== undefined && formatIpAddress(mine) === unmapped;
    });
    const kind = own ? "own" : classify(ip);
    const named = rules.allow.some((p) => hostMatches(p, asTarget) && allowsPort(p, port));
    if (kind !== "public" && !named && !(kind === "loopback" && localhostAllowed)) {
      const suggestion = suggestPermission(text, port);
      return {
        allowed: false,
        reason: `${shown} resolves to ${
          CLASS_WORDS[kind]
        } (${text}); allow that address by name: ${suggestion}`,
        suggestion,
        addresses: [],
      };
    }
    if (!checked.includes(text)) checked.push(text);
  }
  return { ...byName, addresses: checked };
}
