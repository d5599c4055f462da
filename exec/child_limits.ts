/**
 * The child's part of the limits: joining the run's cgroup v1 folders, and the rlimits set last
 * before `execve`. Apart from exec/limits.ts so that the child loads only this.
 *
 * @module
 */

import type { RlimitSetting } from "../policy/limits.ts";
import { getRlimit, prepareSetRlimits, RLIMITS } from "../ffi/rlimit.ts";

function pidsIn(dir: string): number[] {
  try {
    return Deno.readTextFileSync(`${dir}/cgroup.procs`).split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Moves a process into the run's cgroup v1 folders and checks that it is there. The child calls
 * it on itself before it drops privileges or applies Landlock (both would forbid the write),
 * late enough that the memory it has already is charged where it was.
 *
 * @example No folders, nothing to join
 * ```ts
 * import { joinLimitCgroups } from "./limits.ts";
 *
 * joinLimitCgroups([]);
 * ```
 *
 * @param procsPaths `LimitCgroups.procsPaths`.
 * @param pid The process.
 * @throws {Error} When a write fails or the process is not listed afterwards.
 */
export function joinLimitCgroups(procsPaths: readonly string[], pid: number = Deno.pid): void {
  for (const procs of procsPaths) {
    Deno.writeTextFileSync(procs, String(pid), { create: false });
    const dir = procs.replace(/\/cgroup\.procs$/, "");
    if (!pidsIn(dir).includes(pid)) {
      throw new Error(`Process ${pid} is not in ${dir} after joining`);
    }
  }
}

/** CPU seconds this process has used, its finished threads included (`/proc/self/stat`). */
function cpuSecondsUsed(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  // Fields after "(comm)": state is field 3, utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // USER_HZ is 100 on x86_64 and aarch64.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * Prepares the plan's rlimits for the calling process and returns the function that sets them:
 * every value is worked out now, so that setting them allocates nothing but a few small
 * numbers. Call that function last, right before `execve`, with the `execve` strings already
 * encoded: `RLIMIT_AS` (set last) is below what a Deno process has mapped, and V8 aborts when
 * its heap cannot grow. Call it after any change of identity too (a `setuid` while over
 * `RLIMIT_NPROC` makes the next `execve` fail) and after everything that opens files.
 *
 * No hard limit is raised: where the process's own is lower already, it stays (and the soft
 * limit goes up to it at most). `RLIMIT_CPU` is counted from now: the CPU time this process has
 * used so far, which `execve` does not reset, is added, and the sum rounded up to whole seconds.
 *
 * @example
 * ```ts
 * import { prepareRlimits } from "./limits.ts";
 *
 * const setLimits = prepareRlimits([]);
 * setLimits();
 * ```
 *
 * @param rlimits `LimitPlan.rlimits`.
 * @returns The function that sets them; it throws when a limit cannot be set or reads back
 *   otherwise.
 */
export function prepareRlimits(rlimits: readonly RlimitSetting[]): () => void {
  const used = rlimits.some((limit) => limit.resource === "RLIMIT_CPU") ? cpuSecondsUsed() : 0;
  const min = (a: bigint, b: bigint) => a < b ? a : b;
  // The command's own seconds, from now, rounded up to the whole seconds the kernel counts.
  const value = (limit: RlimitSetting, which: "soft" | "hard") =>
    limit.resource === "RLIMIT_CPU" ? Math.ceil(limit[which] + used) : limit[which];
  const changes = rlimits.map((limit) => {
    const resource = RLIMITS[limit.resource];
    const hard = min(BigInt(value(limit, "hard")), getRlimit(resource).hard);
    return { resource, soft: min(BigInt(value(limit, "soft")), hard), hard };
  });
  // RLIMIT_AS last: past it, this process's own allocations may fail.
  const last = (change: { resource: number }) => Number(change.resource === RLIMITS.RLIMIT_AS);
  return prepareSetRlimits(changes.sort((a, b) => last(a) - last(b)));
}
