/**
 * The kernel facts the planner needs, probed once per process.
 *
 * @module
 */

import { landlockAbi } from "../ffi/landlock.ts";
import type { KernelFacts } from "../policy/plan.ts";

let cached: KernelFacts | undefined;

/**
 * This machine's architecture and Landlock ABI.
 * @returns The facts.
 * @throws {Error} On an architecture without syscall tables.
 */
export function probeKernel(): KernelFacts {
  if (cached) return cached;
  const arch = Deno.build.arch;
  if (arch !== "x86_64" && arch !== "aarch64") {
    throw new Error(`Unsupported architecture: ${arch} (x86_64 and aarch64 only)`);
  }
  return cached = { arch, landlockAbi: landlockAbi() };
}
