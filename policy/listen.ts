/**
 * Which `listen()` calls the supervisor performs for the command. Landlock checks `bind()` but
 * not the port `listen()` picks for a TCP socket that was never bound (any free port, on every
 * interface): the supervisor looks at the very socket first. Pure.
 *
 * @module
 */

import { AF_INET, AF_INET6, AF_UNIX } from "./seccomp.ts";

/** What the supervisor lets the command listen on. */
export interface ListenPolicy {
  /** Whether UNIX sockets may listen (`network-unix-sockets`). */
  unix: boolean;
  /** The TCP ports `network-bind-tcp` grants. */
  ports: number[];
}

// From include/uapi/asm-generic/errno-base.h.
const EACCES = 13;

/**
 * The answer to one `listen()`: 0 to perform it, or the errno the command gets.
 *
 * @example
 * ```ts
 * import { decideListen } from "./listen.ts";
 * import assert from "node:assert/strict";
 *
 * const policy = { unix: false, ports: [8080] };
 * assert.equal(decideListen({ family: 2, port: 8080 }, policy), 0);
 * assert.equal(decideListen({ family: 2, port: 0 }, policy), 13, "never bound: any port");
 * ```
 *
 * @param socket The socket's family and bound port (0 when never bound).
 * @param policy What is granted.
 * @returns 0 or `EACCES`, as Landlock refuses a bind.
 */
export function decideListen(
  socket: { family: number; port: number },
  policy: ListenPolicy,
): number {
  if (socket.family === AF_UNIX) return policy.unix ? 0 : EACCES;
  if (socket.family === AF_INET || socket.family === AF_INET6) {
    // Bound means bind() passed Landlock's port rule; a port outside the list cannot be bound.
    return socket.port !== 0 && policy.ports.includes(socket.port) ? 0 : EACCES;
  }
  return EACCES;
}
