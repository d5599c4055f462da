/**
 * The additive permissions a sandbox policy is made of, and how users write them.
 *
 * @module
 */

import { formatDomainPattern, parseDomainPattern } from "./network_domain.ts";

/** A permission that takes no argument, by the name a user types. */
export type SimplePermissionName =
  | "disk-full-read-access"
  | "disk-write-cwd"
  | "disk-write-platform-user-temp-folder"
  | "disk-write-platform-global-temp-folder"
  | "disk-full-write-access"
  | "network-full-access"
  | "network-unix-sockets";

/** A permission that takes a folder. */
export type FolderPermissionName = "disk-write-folder" | "disk-read-folder";

/** A permission that takes a TCP port. */
export type PortPermissionName = "network-connect-tcp" | "network-bind-tcp";

/** One permission of a policy. A policy is exactly the set of its permissions. */
export type SandboxPermission =
  | { readonly kind: SimplePermissionName }
  | { readonly kind: FolderPermissionName; readonly folder: string }
  | { readonly kind: PortPermissionName; readonly port: number }
  | { readonly kind: "network-domain"; readonly host: string };

/** Every permission name a user can type, in the order the README lists them. */
export const PERMISSION_NAMES: readonly string[] = [
  "disk-full-read-access",
  "disk-read-folder",
  "disk-write-cwd",
  "disk-write-platform-user-temp-folder",
  "disk-write-platform-global-temp-folder",
  "disk-write-folder",
  "disk-full-write-access",
  "network-full-access",
  "network-connect-tcp",
  "network-bind-tcp",
  "network-unix-sockets",
  "network-domain",
];

const FOLDER = new Set<string>(["disk-write-folder", "disk-read-folder"]);
const PORT = new Set<string>(["network-connect-tcp", "network-bind-tcp"]);
const DOMAIN = "network-domain";
const SIMPLE = new Set<string>(
  PERMISSION_NAMES.filter((name) => !FOLDER.has(name) && !PORT.has(name) && name !== DOMAIN),
);

/**
 * Thrown when a permission is not one this sandbox knows, or is malformed.
 *
 * @example
 * ```ts
 * import { InvalidPermissionError, parsePermission } from "./permission.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => parsePermission("disk-write-everything"), InvalidPermissionError);
 * ```
 */
export class InvalidPermissionError extends Error {
  /** The value as given, for the message and for callers that report it. */
  readonly value: unknown;

  /**
   * Makes the error.
   * @param value The offending value.
   * @param reason What is wrong with it.
   */
  constructor(value: unknown, reason: string) {
    super(`Invalid sandbox permission ${describe(value)}: ${reason}`);
    this.name = "InvalidPermissionError";
    this.value = value;
  }
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Parses a permission from its string form (`disk-write-cwd`, `disk-write-folder=/x`,
 * `network-connect-tcp=443`, `network-domain=registry.npmjs.org`) or its JSON object form
 * (`{"disk-write-folder": {"folder": "/x"}}`, `{"network-connect-tcp": {"port": 443}}`,
 * `{"network-domain": {"host": "*.example.com"}}`, `{"disk-write-cwd": {}}`).
 *
 * @example Parse the two forms
 * ```ts
 * import { parsePermission } from "./permission.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parsePermission("disk-write-folder=/src"), { kind: "disk-write-folder", folder: "/src" });
 * assert.deepEqual(parsePermission({ "network-full-access": {} }), { kind: "network-full-access" });
 * ```
 *
 * @param value A string or a one-key object.
 * @returns The permission.
 * @throws {InvalidPermissionError} When the value is not a known permission.
 */
export function parsePermission(value: unknown): SandboxPermission {
  if (typeof value === "string") {
    const eq = value.indexOf("=");
    const name = eq === -1 ? value : value.slice(0, eq);
    const arg = eq === -1 ? undefined : value.slice(eq + 1);
    if (FOLDER.has(name)) {
      if (!arg) throw new InvalidPermissionError(value, `expected ${name}=PATH`);
      return { kind: name as FolderPermissionName, folder: arg };
    }
    if (PORT.has(name)) {
      return { kind: name as PortPermissionName, port: parsePort(value, name, arg) };
    }
    if (name === DOMAIN) return { kind: DOMAIN, host: parseDomain(value, arg) };
    if (!SIMPLE.has(name)) throw unknownName(value, name);
    if (arg !== undefined) throw new InvalidPermissionError(value, `"${name}" takes no argument`);
    return { kind: name as SimplePermissionName };
  }
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length !== 1) {
      throw new InvalidPermissionError(value, "an object permission has exactly one key");
    }
    const [name] = keys;
    const arg = (value as Record<string, unknown>)[name];
    const fields = arg !== null && typeof arg === "object" && !Array.isArray(arg)
      ? arg as Record<string, unknown>
      : undefined;
    const only = (key: string) =>
      fields !== undefined && Object.keys(fields).every((field) => field === key);
    if (FOLDER.has(name)) {
      if (!only("folder") || typeof fields!.folder !== "string" || fields!.folder === "") {
        throw new InvalidPermissionError(value, `expected {"${name}": {"folder": "PATH"}}`);
      }
      return { kind: name as FolderPermissionName, folder: fields!.folder };
    }
    if (PORT.has(name)) {
      if (!only("port") || typeof fields!.port !== "number") {
        throw new InvalidPermissionError(value, `expected {"${name}": {"port": NUMBER}}`);
      }
      return {
        kind: name as PortPermissionName,
        port: parsePort(value, name, String(fields!.port)),
      };
    }
    if (name === DOMAIN) {
      if (!only("host") || typeof fields!.host !== "string") {
        throw new InvalidPermissionError(value, `expected {"${DOMAIN}": {"host": "PATTERN"}}`);
      }
      return { kind: DOMAIN, host: parseDomain(value, fields!.host) };
    }
    if (!SIMPLE.has(name)) throw unknownName(value, name);
    if (
      !(arg === null || arg === true || (fields !== undefined && Object.keys(fields).length === 0))
    ) {
      throw new InvalidPermissionError(value, `"${name}" takes no argument`);
    }
    return { kind: name as SimplePermissionName };
  }
  throw new InvalidPermissionError(value, "expected a string or a one-key object");
}

function parsePort(value: unknown, name: string, arg: string | undefined): number {
  const port = arg !== undefined && /^[0-9]{1,5}$/.test(arg) ? Number(arg) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new InvalidPermissionError(value, `expected ${name}=PORT with a port from 1 to 65535`);
  }
  return port;
}

function parseDomain(value: unknown, arg: string | undefined): string {
  if (!arg) throw new InvalidPermissionError(value, `expected ${DOMAIN}=HOST[:PORT]`);
  try {
    return formatDomainPattern(parseDomainPattern(arg));
  } catch (error) {
    throw new InvalidPermissionError(value, (error as Error).message);
  }
}

function unknownName(value: unknown, name: string): InvalidPermissionError {
  return new InvalidPermissionError(
    value,
    `unknown permission "${name}" (known: ${PERMISSION_NAMES.join(", ")})`,
  );
}

/**
 * Formats a permission the way a user types it on the command line.
 *
 * @example
 * ```ts
 * import { formatPermission } from "./permission.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatPermission({ kind: "disk-write-folder", folder: "/x" }), "disk-write-folder=/x");
 * ```
 *
 * @param permission The permission.
 * @returns Its string form.
 */
export function formatPermission(permission: SandboxPermission): string {
  if ("folder" in permission) return `${permission.kind}=${permission.folder}`;
  if ("port" in permission) return `${permission.kind}=${permission.port}`;
  if ("host" in permission) return `${permission.kind}=${permission.host}`;
  return permission.kind;
}
