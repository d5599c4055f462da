/**
 * The kernel facts the planner needs, probed once per process.
 *
 * @module
 */

import { type LandlockAbiProbe, probeLandlockAbi } from "../ffi/landlock.ts";
import type { KernelFacts } from "../policy/plan.ts";

let cached: (KernelFacts & { landlockErrno?: number }) | undefined;

/**
 * This machine's architecture and Landlock ABI.
 *
 * @example
 * ```ts
 * import { probeKernel } from "./kernel.ts";
 *
 * const { arch, landlockAbi } = probeKernel();
 * console.log(`${arch}: Landlock ABI ${landlockAbi}`);
 * ```
 *
 * @returns The facts, and the errno that made the ABI 0 when it is.
 * @throws {Error} On an architecture without syscall tables.
 */
export function probeKernel(): KernelFacts & { landlockErrno?: number } {
  if (cached) return cached;
  const arch = Deno.build.arch;
  if (arch !== "x86_64" && arch !== "aarch64") {
    throw new Error(`Unsupported architecture: ${arch} (x86_64 and aarch64 only)`);
  }
  const probe: LandlockAbiProbe = probeLandlockAbi();
  return cached = { arch, landlockAbi: probe.abi, landlockErrno: probe.errno };
}
