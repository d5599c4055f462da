/**
 * Landlock through raw system calls: the ABI probe and applying a planned ruleset to the
 * calling thread.
 *
 * @module
 */

import type { LandlockPlan } from "../policy/landlock.ts";
import { addressOf, close, syscall, SyscallError } from "./libc.ts";
import { openPlanned } from "./files.ts";

// From include/uapi/linux/landlock.h.
const LANDLOCK_CREATE_RULESET_VERSION = 1;
const LANDLOCK_RULE_PATH_BENEATH = 1;
const LANDLOCK_RULE_NET_PORT = 2;

/** The outcome of asking the kernel for its Landlock ABI. */
export interface LandlockAbiProbe {
  /** The ABI version, 0 when Landlock is unavailable. */
  abi: number;
  /** Why it is unavailable: the errno of the query (ENOSYS, EOPNOTSUPP, ...), else `undefined`. */
  errno?: number;
}

/**
 * Asks the kernel for its Landlock ABI version.
 * @returns The version, or 0 with the errno when Landlock is not built in, not enabled, or the
 * query is blocked (by a container's seccomp profile, for instance).
 */
export function probeLandlockAbi(): LandlockAbiProbe {
  try {
    return {
      abi: Number(syscall("landlock_create_ruleset", 0, 0, LANDLOCK_CREATE_RULESET_VERSION)),
    };
  } catch (error) {
    if (error instanceof SyscallError) return { abi: 0, errno: error.errno };
    throw error;
  }
}

/**
 * Creates the planned ruleset and adds its rules, each on exactly the file that was planned
 * (see `openPlanned`). Needs no privilege, so it runs before the identity changes: a rule path
 * only the caller may reach (a pyenv under root's home) is opened with the caller's rights.
 * @param plan The Landlock part of a sandbox plan, made for this kernel's ABI.
 * @returns The ruleset's descriptor, for `restrictSelf`.
 * @throws {SyscallError|Error} When any step fails or a path is another file now.
 */
export function prepareLandlock(plan: LandlockPlan): number {
  // struct landlock_ruleset_attr { __u64 handled_access_fs, handled_access_net, scoped; }
  // Older kernels accept the full size as long as the fields they do not know are zero.
  const attr = new BigUint64Array([
    BigInt(plan.handledAccessFs),
    BigInt(plan.handledAccessNet),
    BigInt(plan.scoped),
  ]);
  const rulesetFd = Number(syscall("landlock_create_ruleset", addressOf(attr), attr.byteLength, 0));
  try {
    // struct landlock_path_beneath_attr { __u64 allowed_access; __s32 parent_fd; } (packed)
    const beneath = new Uint8Array(12);
    const view = new DataView(beneath.buffer);
    for (const rule of plan.rules) {
      let parentFd: number;
      try {
        parentFd = openPlanned(rule.path, rule, rule.directory);
      } catch (error) {
        // A rule that only reads, on a file gone or replaced since planning: less access.
        if (rule.optional) continue;
        throw error;
      }
      try {
        view.setBigUint64(0, BigInt(rule.access), true);
        view.setInt32(8, parentFd, true);
        try {
          syscall(
            "landlock_add_rule",
            rulesetFd,
            LANDLOCK_RULE_PATH_BENEATH,
            addressOf(beneath),
            0,
          );
        } catch (error) {
          if (error instanceof SyscallError) {
            throw new SyscallError("landlock_add_rule", error.errno, rule.path);
          }
          throw error;
        }
      } finally {
        close(parentFd);
      }
    }
    for (const rule of plan.netRules) {
      // struct landlock_net_port_attr { __u64 allowed_access; __u64 port; } (packed)
      const attr = new BigUint64Array([BigInt(rule.access), BigInt(rule.port)]);
      try {
        syscall("landlock_add_rule", rulesetFd, LANDLOCK_RULE_NET_PORT, addressOf(attr), 0);
      } catch (error) {
        if (error instanceof SyscallError) {
          throw new SyscallError("landlock_add_rule", error.errno, `TCP port ${rule.port}`);
        }
        throw error;
      }
    }
    return rulesetFd;
  } catch (error) {
    close(rulesetFd);
    throw error;
  }
}

/**
 * Restricts the calling thread with a prepared ruleset, then closes it. `PR_SET_NO_NEW_PRIVS`
 * must already be set.
 * @param rulesetFd What `prepareLandlock` returned.
 * @throws {SyscallError} When the kernel refuses; the command must not run.
 */
export function restrictSelf(rulesetFd: number): void {
  try {
    syscall("landlock_restrict_self", rulesetFd, 0);
  } finally {
    close(rulesetFd);
  }
}

/**
 * Creates the planned ruleset, adds its rules and restricts the calling thread with it.
 * `PR_SET_NO_NEW_PRIVS` must already be set.
 * @param plan The Landlock part of a sandbox plan, made for this kernel's ABI.
 * @throws {SyscallError|Error} When any step fails; the thread may then be partly restricted,
 * and the caller must not run the command.
 */
export function applyLandlock(plan: LandlockPlan): void {
  restrictSelf(prepareLandlock(plan));
}
