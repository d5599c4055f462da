/**
 * Resolves `--run-as USER[:GROUP]` on this machine, from `/etc/passwd` and `/etc/group` (not
 * NSS: a user known only to LDAP or systemd-homed must be given by number).
 *
 * @module
 */

import { parseGroup, parsePasswd, resolveRunAs, type RunAs } from "../policy/run_as.ts";

function readOrEmpty(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  }
}

/**
 * Resolves an identity against this machine's account files.
 * @param spec `USER[:GROUP]`, names or numbers.
 * @returns The identity.
 * @throws {PolicyError} `invalid-run-as` when it is malformed or names nobody.
 */
export function resolveRunAsOnSystem(spec: string): RunAs {
  return resolveRunAs(
    spec,
    parsePasswd(readOrEmpty("/etc/passwd")),
    parseGroup(readOrEmpty("/etc/group")),
  );
}
