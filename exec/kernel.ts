/**
 * The kernel facts the planner needs, probed once per process.
 *
 * @module
 */

import { type LandlockAbiProbe, probeLandlockAbi } from "../ffi/landlock.ts";
import { capabilitiesFromHex } from "../policy/capabilities.ts";
import type { KernelFacts } from "../policy/plan.ts";

let cached: (KernelFacts & { landlockErrno?: number }) | undefined;

/**
 * This machine's architecture, Landlock ABI and last capability, and this process's uid and
 * effective capabilities (the supervised child starts with the same).
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
 * @throws {Error} On an architecture without syscall tables, or without `/proc`.
 */
export function probeKernel(): KernelFacts & { landlockErrno?: number } {
  if (cached) return cached;
  const arch = Deno.build.arch;
  if (arch !== "x86_64" && arch !== "aarch64") {
    throw new Error(`Unsupported architecture: ${arch} (x86_64 and aarch64 only)`);
  }
  const capLastCap = Number(Deno.readTextFileSync("/proc/sys/kernel/cap_last_cap").trim());
  if (!Number.isInteger(capLastCap) || capLastCap < 0 || capLastCap > 63) {
    throw new Error(`Unexpected /proc/sys/kernel/cap_last_cap: ${capLastCap}`);
  }
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(Deno.readTextFileSync("/proc/self/status"));
  if (!capEff) throw new Error("No CapEff line in /proc/self/status");
  const probe: LandlockAbiProbe = probeLandlockAbi();
  return cached = {
    arch,
    landlockAbi: probe.abi,
    landlockErrno: probe.errno,
    capLastCap,
    uid: Deno.uid() ?? -1,
    effectiveCapabilities: capabilitiesFromHex(capEff[1]),
  };
}
