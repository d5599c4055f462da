/**
 * The capability part of a plan: which capabilities the command keeps (as root, none that step
 * around the policy) and which leave the bounding set so that `execve` cannot give them back.
 * Pure: the kernel's last capability and the caller's effective set are given.
 *
 * @module
 */

// Capability numbers from include/uapi/linux/capability.h, in order (the index is the number).
const CAPABILITY_NAMES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_FOWNER",
  "CAP_FSETID",
  "CAP_KILL",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETPCAP",
  "CAP_LINUX_IMMUTABLE",
  "CAP_NET_BIND_SERVICE",
  "CAP_NET_BROADCAST",
  "CAP_NET_ADMIN",
  "CAP_NET_RAW",
  "CAP_IPC_LOCK",
  "CAP_IPC_OWNER",
  "CAP_SYS_MODULE",
  "CAP_SYS_RAWIO",
  "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE",
  "CAP_SYS_PACCT",
  "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT",
  "CAP_SYS_NICE",
  "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME",
  "CAP_SYS_TTY_CONFIG",
  "CAP_MKNOD",
  "CAP_LEASE",
  "CAP_AUDIT_WRITE",
  "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP",
  "CAP_MAC_OVERRIDE",
  "CAP_MAC_ADMIN",
  "CAP_SYSLOG",
  "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ",
  "CAP_PERFMON",
  "CAP_BPF",
  "CAP_CHECKPOINT_RESTORE",
];

export const CAP_CHOWN = 0;
export const CAP_DAC_OVERRIDE = 1;
export const CAP_DAC_READ_SEARCH = 2;
export const CAP_FOWNER = 3;
export const CAP_FSETID = 4;
export const CAP_SETPCAP = 8;
export const CAP_NET_BIND_SERVICE = 10;
export const CAP_NET_RAW = 13;

/**
 * What root keeps with `disk-full-write-access`: writing anywhere as root means writing files
 * other users own and setting their owner and mode (package managers, `make install`). The
 * policy restricts no file, so none of these steps around it.
 */
export const FULL_WRITE_CAPABILITIES: readonly number[] = [
  CAP_CHOWN,
  CAP_DAC_OVERRIDE,
  CAP_DAC_READ_SEARCH,
  CAP_FOWNER,
  CAP_FSETID,
];

/**
 * What root keeps with `network-full-access`: nothing. The network is reaching other hosts;
 * `CAP_NET_RAW` (raw and packet sockets) would also read every user's traffic on the machine,
 * loopback included, and forge it, and `CAP_NET_BIND_SERVICE` would let the command take a
 * system service's port. `ping` works where `net.ipv4.ping_group_range` lets it use ICMP
 * datagram sockets, as for any user.
 */
export const FULL_NETWORK_CAPABILITIES: readonly number[] = [];

/**
 * The name of a capability.
 * @param capability Its number.
 * @returns E.g. `CAP_SYS_ADMIN`, or `CAP_42` for a number newer than this table.
 */
export function capabilityName(capability: number): string {
  return CAPABILITY_NAMES[capability] ?? `CAP_${capability}`;
}

/**
 * The capabilities in a mask as `/proc/PID/status` shows it (`CapEff:	000001ffffffffff`).
 * @param hex The mask in hexadecimal.
 * @returns The capability numbers, lowest first.
 * @throws {TypeError} When `hex` is not a hexadecimal number.
 */
export function capabilitiesFromHex(hex: string): number[] {
  if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) throw new TypeError(`Not a capability mask: "${hex}"`);
  const mask = BigInt(`0x${hex}`);
  const capabilities: number[] = [];
  for (let capability = 0; capability < 64; capability++) {
    if ((mask >> BigInt(capability)) & 1n) capabilities.push(capability);
  }
  return capabilities;
}

/** What the capability planner needs to know. */
export interface CapabilityInput {
  /** Whether writes are restricted (no `disk-full-write-access`). */
  restrictWrites: boolean;
  /** Whether the network is restricted (no `network-full-access`). */
  restrictNetwork: boolean;
  /** The uid the command will run with. */
  uid: number;
  /** The kernel's highest capability (`/proc/sys/kernel/cap_last_cap`). */
  lastCap: number;
  /** The effective set of the process that applies the plan. */
  effective: readonly number[];
}

/** The capability part of a sandbox plan. */
export interface CapabilityPlan {
  /** The kernel's highest capability. */
  lastCap: number;
  /**
   * Removed from the bounding set, lowest first, before the identity changes (it needs
   * `CAP_SETPCAP`, which a change to another uid clears): every capability but `keep`. Empty
   * when the process lacks `CAP_SETPCAP`.
   */
  dropBounding: number[];
  /** What stays in the permitted and effective sets (and the bounding set); nothing inherits. */
  keep: number[];
  /** `keep` by name, for people. */
  keepNames: string[];
  /** What could not be done, and why that is still safe, in words. */
  notes: string[];
}

/**
 * Plans the capabilities of a restricted command. As root it keeps uid 0 but no capability
 * that steps around the policy: every capability leaves the bounding set (so that `execve`,
 * which gives root its bounding set back, cannot), the ambient set is cleared and the effective,
 * permitted and inheritable sets are emptied. With `disk-full-write-access`, root keeps what
 * that permission needs (`FULL_WRITE_CAPABILITIES`) and has anyway; `network-full-access`
 * keeps nothing (`FULL_NETWORK_CAPABILITIES`).
 *
 * @example Root with full write keeps the file capabilities only
 * ```ts
 * import { planCapabilities } from "./capabilities.ts";
 * import assert from "node:assert/strict";
 *
 * const all = Array.from({ length: 41 }, (_, i) => i);
 * const plan = planCapabilities({
 *   restrictWrites: false, restrictNetwork: true, uid: 0, lastCap: 40, effective: all,
 * });
 * assert.deepEqual(plan.keepNames, [
 *   "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
 * ]);
 * assert.equal(plan.dropBounding.length, 36);
 * ```
 *
 * @param input What is restricted, who runs the command, and what the caller holds.
 * @returns The plan.
 */
export function planCapabilities(input: CapabilityInput): CapabilityPlan {
  const notes: string[] = [];
  const wanted = new Set<number>();
  if (input.uid === 0) {
    if (!input.restrictWrites) FULL_WRITE_CAPABILITIES.forEach((cap) => wanted.add(cap));
    if (!input.restrictNetwork) FULL_NETWORK_CAPABILITIES.forEach((cap) => wanted.add(cap));
  }
  // Only what the process holds can be kept: asking capset for more fails.
  const keep = input.effective.filter((cap) => wanted.has(cap)).sort((a, b) => a - b);
  const dropBounding: number[] = [];
  if (input.effective.includes(CAP_SETPCAP)) {
    for (let cap = 0; cap <= input.lastCap; cap++) if (!keep.includes(cap)) dropBounding.push(cap);
  } else {
    notes.push(
      "the bounding set is left as it is (dropping it needs CAP_SETPCAP): no_new_privs and the " +
        "emptied permitted set keep execve from granting anything",
    );
  }
  return { lastCap: input.lastCap, dropBounding, keep, keepNames: keep.map(capabilityName), notes };
}
