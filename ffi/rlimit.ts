/**
 * Resource limits of the calling process, through `prlimit64(2)` on itself (pid 0). An rlimit
 * belongs to the process, not the thread, survives `execve` and is inherited by every child.
 *
 * @module
 */

import { addressOf, syscall, SyscallError } from "./libc.ts";

// From include/uapi/asm-generic/resource.h; x86_64 and aarch64 use the generic numbers.
/** CPU time in seconds: SIGXCPU at the soft limit, SIGKILL at the hard one. */
export const RLIMIT_CPU = 0;
/** The largest file the process may write, in bytes: SIGXFSZ past it. */
export const RLIMIT_FSIZE = 1;
/** Data segment and private writable mappings, in bytes. */
export const RLIMIT_DATA = 2;
/** The main thread's stack, in bytes. */
export const RLIMIT_STACK = 3;
/** The largest core dump, in bytes. */
export const RLIMIT_CORE = 4;
/** Resident memory; not enforced by Linux. */
export const RLIMIT_RSS = 5;
/** Tasks of the real uid, all of its processes counted; not applied to root. */
export const RLIMIT_NPROC = 6;
/** One more than the highest descriptor number the process may open. */
export const RLIMIT_NOFILE = 7;
/** Memory locked in RAM, in bytes. */
export const RLIMIT_MEMLOCK = 8;
/** The process's address space, in bytes, reserved or not. */
export const RLIMIT_AS = 9;
/** `RLIM_INFINITY`: no limit (`~0UL` in include/uapi/linux/resource.h). */
export const RLIM_INFINITY = 0xffffffffffffffffn;

/** The resources by their header name, for plans that carry names. */
export const RLIMITS = {
  RLIMIT_CPU,
  RLIMIT_FSIZE,
  RLIMIT_DATA,
  RLIMIT_STACK,
  RLIMIT_CORE,
  RLIMIT_RSS,
  RLIMIT_NPROC,
  RLIMIT_NOFILE,
  RLIMIT_MEMLOCK,
  RLIMIT_AS,
} as const;

/** A resource's name, e.g. `RLIMIT_NOFILE`. */
export type RlimitName = keyof typeof RLIMITS;

/** A soft and a hard limit (`struct rlimit64`); `RLIM_INFINITY` for none. */
export interface Rlimit {
  /** The limit the kernel enforces. */
  soft: bigint;
  /** The ceiling of the soft limit; only `CAP_SYS_RESOURCE` may raise it. */
  hard: bigint;
}

function nameOf(resource: number): string {
  return Object.entries(RLIMITS).find(([, number]) => number === resource)?.[0] ??
    `resource ${resource}`;
}

// struct rlimit64 { __u64 rlim_cur; __u64 rlim_max; }
type Rlimit64 = BigUint64Array<ArrayBuffer>;

function prlimit(resource: number, next: Rlimit64 | null, old: Rlimit64 | null): void {
  try {
    syscall("prlimit64", 0, resource, addressOf(next), addressOf(old));
  } catch (error) {
    if (error instanceof SyscallError) {
      const detail = next ? `${nameOf(resource)} ${next[0]}/${next[1]}` : nameOf(resource);
      throw new SyscallError("prlimit64", error.errno, detail);
    }
    throw error;
  }
  // Keeps both buffers reachable until after the call, which was given only their addresses.
  if (next?.length === 0 || old?.length === 0) throw new Error("unreachable");
}

/**
 * The calling process's limits for a resource.
 *
 * @example
 * ```ts
 * import { getRlimit, RLIMIT_NOFILE } from "./rlimit.ts";
 * import assert from "node:assert/strict";
 *
 * const { soft, hard } = getRlimit(RLIMIT_NOFILE);
 * assert.ok(soft <= hard);
 * ```
 *
 * @param resource An `RLIMIT_*` number.
 * @returns The soft and hard limits.
 * @throws {SyscallError} When the kernel refuses (an unknown resource).
 */
export function getRlimit(resource: number): Rlimit {
  const old = new BigUint64Array(2);
  prlimit(resource, null, old);
  return { soft: old[0], hard: old[1] };
}

/**
 * Sets the calling process's limits for a resource. Lowering needs no privilege; raising the
 * hard limit needs `CAP_SYS_RESOURCE`, and the soft one may not exceed the hard one.
 *
 * @example Forbid core dumps in this process
 * ```ts
 * import { getRlimit, RLIMIT_CORE, setRlimit } from "./rlimit.ts";
 * import assert from "node:assert/strict";
 *
 * setRlimit(RLIMIT_CORE, 0, getRlimit(RLIMIT_CORE).hard);
 * assert.equal(getRlimit(RLIMIT_CORE).soft, 0n);
 * ```
 *
 * @param resource An `RLIMIT_*` number.
 * @param soft The limit the kernel enforces.
 * @param hard Its ceiling.
 * @throws {SyscallError} When the kernel refuses (EPERM to raise, EINVAL for soft above hard).
 */
export function setRlimit(resource: number, soft: bigint | number, hard: bigint | number): void {
  prlimit(resource, new BigUint64Array([BigInt(soft), BigInt(hard)]), null);
}

/** A resource and the limits to give it, for `prepareSetRlimits`. */
export interface RlimitChange {
  /** An `RLIMIT_*` number. */
  resource: number;
  /** The soft limit. */
  soft: bigint;
  /** The hard limit. */
  hard: bigint;
}

/**
 * Prepares setting several limits so that setting them allocates (almost) nothing: every
 * `struct rlimit64` and its address is made now; the function returned only makes the calls
 * and compares what the kernel reads back. Below the process's own address space, `RLIMIT_AS`
 * makes any new mapping fail, and V8 aborts when its heap cannot grow: such a limit is set
 * with this, right before an `execve` whose strings are already encoded.
 *
 * @example
 * ```ts
 * import { getRlimit, prepareSetRlimits, RLIMIT_CORE } from "./rlimit.ts";
 * import assert from "node:assert/strict";
 *
 * const { hard } = getRlimit(RLIMIT_CORE);
 * const set = prepareSetRlimits([{ resource: RLIMIT_CORE, soft: 0n, hard }]);
 * set();
 * assert.equal(getRlimit(RLIMIT_CORE).soft, 0n);
 * ```
 *
 * @param changes The limits, set in this order.
 * @returns The function that sets them.
 * @throws {SyscallError|Error} From the function returned: when the kernel refuses a limit or
 *   reads it back otherwise.
 */
export function prepareSetRlimits(changes: readonly RlimitChange[]): () => void {
  const prepared = changes.map(({ resource, soft, hard }) => {
    const next: Rlimit64 = new BigUint64Array([soft, hard]);
    const old: Rlimit64 = new BigUint64Array(2);
    return { resource, next, old, nextAddress: addressOf(next), oldAddress: addressOf(old) };
  });
  return () => {
    for (const { resource, next, old, nextAddress, oldAddress } of prepared) {
      try {
        syscall("prlimit64", 0, resource, nextAddress, 0);
        syscall("prlimit64", 0, resource, 0, oldAddress);
      } catch (error) {
        if (error instanceof SyscallError) {
          throw new SyscallError(
            "prlimit64",
            error.errno,
            `${nameOf(resource)} ${next[0]}/${next[1]}`,
          );
        }
        throw error;
      }
      if (old[0] !== next[0] || old[1] !== next[1]) {
        throw new Error(
          `${nameOf(resource)} reads back as ${old[0]}/${old[1]}, not ${next[0]}/${next[1]}`,
        );
      }
    }
  };
}
