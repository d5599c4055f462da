/**
 * The additive permissions a sandbox policy is made of, and how users write them.
 *
 * @module
 */

/** A permission that takes no argument, by the name a user types. */
export type SimplePermissionName =
  | "disk-full-read-access"
  | "disk-write-cwd"
  | "disk-write-platform-user-temp-folder"
  | "disk-write-platform-global-temp-folder"
  | "disk-full-write-access"
  | "network-full-access";

/** One permission of a policy. A policy is exactly the set of its permissions. */
export type SandboxPermission =
  | { readonly kind: SimplePermissionName }
  | { readonly kind: "disk-write-folder"; readonly folder: string };

/** Every permission name a user can type, in the order the README lists them. */
export const PERMISSION_NAMES: readonly string[] = [
  "disk-full-read-access",
  "disk-write-cwd",
  "disk-write-platform-user-temp-folder",
  "disk-write-platform-global-temp-folder",
  "disk-write-folder",
  "disk-full-write-access",
  "network-full-access",
];

const SIMPLE = new Set<string>(PERMISSION_NAMES.filter((name) => name !== "disk-write-folder"));

/** Thrown when a permission is not one this sandbox knows, or is malformed. */
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
 * Parses a permission from its string form (`disk-write-cwd`, `disk-write-folder=/x`) or its
 * JSON object form (`{"disk-write-folder": {"folder": "/x"}}`, `{"disk-write-cwd": {}}`).
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
  if (typeof value === "string") return parsePermissionString(value);
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length !== 1) {
      throw new InvalidPermissionError(value, "an object permission has exactly one key");
    }
    const [name] = keys;
    const arg = (value as Record<string, unknown>)[name];
    if (name === "disk-write-folder") {
      const folder = arg !== null && typeof arg === "object"
        ? (arg as Record<string, unknown>).folder
        : undefined;
      const extra = arg !== null && typeof arg === "object"
        ? Object.keys(arg).filter((key) => key !== "folder")
        : [];
      if (typeof folder !== "string" || folder === "" || extra.length > 0) {
        throw new InvalidPermissionError(
          value,
          'expected {"disk-write-folder": {"folder": "PATH"}}',
        );
      }
      return { kind: "disk-write-folder", folder };
    }
    if (!SIMPLE.has(name)) throw unknownName(value, name);
    const emptyArg = arg === null || arg === true ||
      (typeof arg === "object" && !Array.isArray(arg) && Object.keys(arg as object).length === 0);
    if (!emptyArg) {
      throw new InvalidPermissionError(value, `"${name}" takes no argument`);
    }
    return { kind: name as SimplePermissionName };
  }
  throw new InvalidPermissionError(value, "expected a string or a one-key object");
}

function parsePermissionString(value: string): SandboxPermission {
  const eq = value.indexOf("=");
  const name = eq === -1 ? value : value.slice(0, eq);
  if (name === "disk-write-folder") {
    const folder = eq === -1 ? "" : value.slice(eq + 1);
    if (folder === "") {
      throw new InvalidPermissionError(value, "expected disk-write-folder=PATH");
    }
    return { kind: "disk-write-folder", folder };
  }
  if (!SIMPLE.has(name)) throw unknownName(value, name);
  if (eq !== -1) throw new InvalidPermissionError(value, `"${name}" takes no argument`);
  return { kind: name as SimplePermissionName };
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
  return permission.kind === "disk-write-folder"
    ? `disk-write-folder=${permission.folder}`
    : permission.kind;
}
