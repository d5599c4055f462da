/**
 * The calling thread's credentials, through raw system calls: its uid, gids and groups, and its
 * capabilities (the bounding set, the ambient set, and `capset`).
 *
 * Raw system calls change the calling thread only; glibc's `setuid(3)` and friends broadcast the
 * change to every thread of the process. That is what is wanted here: the main thread is the one
 * that `execve`s, and only it survives `execve`, so the command runs with exactly what it set.
 * Deno's other threads keep the caller's credentials until then, and never run the command's
 * code.
 *
 * @module
 */

import { addressOf, prctl, syscall, SyscallError } from "./libc.ts";
import { getRlimit, RLIM_INFINITY, RLIMIT_NPROC, setRlimit } from "./rlimit.ts";

// From include/uapi/linux/capability.h and prctl.h.
const _LINUX_CAPABILITY_VERSION_3 = 0x20080522;
const PR_CAPBSET_DROP = 24;
const PR_CAP_AMBIENT = 47;
const PR_CAP_AMBIENT_CLEAR_ALL = 4;

/** The three sets `capget` reports, as 64-bit masks. */
export interface CapabilitySets {
  /** The effective set. */
  effective: bigint;
  /** The permitted set. */
  permitted: bigint;
  /** The inheritable set. */
  inheritable: bigint;
}

/**
 * A mask of capabilities.
 * @param capabilities Capability numbers.
 * @returns The mask, bit N for capability N.
 */
export function capabilityMask(capabilities: readonly number[]): bigint {
  return capabilities.reduce((mask, cap) => mask | (1n << BigInt(cap)), 0n);
}

/**
 * Removes capabilities from the bounding set, so that no `execve` can grant them again (root
 * gets its bounding set on `execve`). Needs `CAP_SETPCAP` in the effective set.
 * @param capabilities The capabilities to remove.
 * @throws {SyscallError} When one cannot be removed.
 */
export function dropBoundingSet(capabilities: readonly number[]): void {
  for (const cap of capabilities) {
    try {
      prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    } catch (error) {
      if (error instanceof SyscallError) {
        throw new SyscallError("prctl(PR_CAPBSET_DROP)", error.errno, `capability ${cap}`);
      }
      throw error;
    }
  }
}

// struct __user_cap_header_struct { __u32 version; int pid; } and two
// struct __user_cap_data_struct { __u32 effective, permitted, inheritable; } (low, high words).
function capHeader(): Uint32Array<ArrayBuffer> {
  return new Uint32Array([_LINUX_CAPABILITY_VERSION_3, 0]);
}

/** The identity `setIdentity` gives the calling thread. */
export interface Identity {
  /** The uid: real, effective and saved. */
  uid: number;
  /** The gid: real, effective and saved. */
  gid: number;
  /** The supplementary groups. */
  groups: readonly number[];
}

/**
 * Sets the supplementary groups, then the gid, then the uid (each needs the privilege the next
 * one gives up), then reads all three back. Called as root: `setgid` and `setuid` then set the
 * real, effective and saved ids together, and leaving uid 0 empties the permitted, effective and
 * ambient capability sets.
 * @param identity The ids.
 * @throws {SyscallError|Error} When a call fails or an id reads back otherwise.
 */
export function setIdentity(identity: Identity): void {
  const groups = new Uint32Array(identity.groups);
  syscall("setgroups", groups.length, addressOf(groups));
  keepAlive(groups);
  syscall("setgid", identity.gid);
  // A uid that already has more tasks than RLIMIT_NPROC allows would be marked at setuid, and
  // the later execve refused (EAGAIN): the limit is lifted for the change (root may), then put
  // back, as sudo does. The command then meets the limit at its first fork, as that user would.
  // Without CAP_SYS_RESOURCE (a container's root) it stays, and so may the EAGAIN.
  const nproc = getRlimit(RLIMIT_NPROC);
  let lifted = true;
  try {
    setRlimit(RLIMIT_NPROC, RLIM_INFINITY, RLIM_INFINITY);
  } catch {
    lifted = false;
  }
  try {
    syscall("setuid", identity.uid);
  } finally {
    if (lifted) setRlimit(RLIMIT_NPROC, nproc.soft, nproc.hard);
  }

  const ids = (name: "getresuid" | "getresgid") => {
    const [real, effective, saved] = [new Uint32Array(1), new Uint32Array(1), new Uint32Array(1)];
    syscall(name, addressOf(real), addressOf(effective), addressOf(saved));
    return [real[0], effective[0], saved[0]];
  };
  const uids = ids("getresuid");
  const gids = ids("getresgid");
  const listed = new Uint32Array(Math.max(groups.length, 1) + 1);
  const count = Number(syscall("getgroups", listed.length, addressOf(listed)));
  const have = [...listed.subarray(0, count)].sort((a, b) => a - b);
  const want = [...identity.groups].sort((a, b) => a - b);
  if (
    uids.some((id) => id !== identity.uid) || gids.some((id) => id !== identity.gid) ||
    have.join() !== want.join()
  ) {
    throw new Error(
      `The identity reads back as uids ${uids.join("/")}, gids ${gids.join("/")}, groups ` +
        `${have.join(",")}; not ${identity.uid}, ${identity.gid}, ${want.join(",")}`,
    );
  }
}

/** Keeps buffers reachable until after a call that was given only their addresses. */
function keepAlive(...buffers: Uint32Array[]): void {
  if (buffers.some((buffer) => buffer.byteLength === 0)) throw new Error("unreachable");
}

/**
 * The calling thread's capability sets (`capget`).
 * @returns The effective, permitted and inheritable sets.
 */
export function getCapabilities(): CapabilitySets {
  const header = capHeader();
  const data = new Uint32Array(6);
  syscall("capget", addressOf(header), addressOf(data));
  keepAlive(header);
  const join = (low: number, high: number) => (BigInt(high) << 32n) | BigInt(low);
  return {
    effective: join(data[0], data[3]),
    permitted: join(data[1], data[4]),
    inheritable: join(data[2], data[5]),
  };
}

/**
 * Clears the ambient set and sets the effective and permitted sets to `keep`, the inheritable
 * set to nothing; then reads them back, so that a set the kernel did not take is an error.
 * Lowering capabilities needs no privilege.
 * @param keep The capabilities to keep; the thread must hold them.
 * @throws {SyscallError|Error} When a set cannot be lowered or reads back otherwise.
 */
export function limitCapabilities(keep: readonly number[]): void {
  try {
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  } catch (error) {
    if (error instanceof SyscallError) {
      throw new SyscallError("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", error.errno);
    }
    throw error;
  }
  const mask = capabilityMask(keep);
  const low = Number(mask & 0xffffffffn);
  const high = Number(mask >> 32n);
  const header = capHeader();
  const data = new Uint32Array([low, low, 0, high, high, 0]);
  syscall("capset", addressOf(header), addressOf(data));
  keepAlive(header, data);
  const now = getCapabilities();
  if (now.effective !== mask || now.permitted !== mask || now.inheritable !== 0n) {
    throw new Error(
      `The capabilities read back as effective ${now.effective.toString(16)}, permitted ` +
        `${now.permitted.toString(16)}, inheritable ${now.inheritable.toString(16)}, ` +
        `not ${mask.toString(16)}, ${mask.toString(16)}, 0`,
    );
  }
}
