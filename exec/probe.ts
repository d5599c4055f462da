/**
 * Gathers the facts for the `--probe` report from this system.
 *
 * @module
 */

import { buildProbeReport, type ProbeReport, type SystemFacts } from "../policy/probe_report.ts";
import { probeKernel } from "./kernel.ts";
import { createKillCgroup } from "./cgroup.ts";
import { limitFacts } from "./limits.ts";

function read(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

function detectContainer(): string | null {
  if (read("/.dockerenv") !== undefined) return "docker";
  if (read("/run/.containerenv") !== undefined) return "podman";
  const environ = read("/proc/1/environ");
  const declared = environ?.split("\0").find((entry) => entry.startsWith("container="));
  if (declared) return declared.slice("container=".length);
  const cgroup = read("/proc/1/cgroup") ?? "";
  for (const name of ["docker", "kubepods", "lxc", "containerd"]) {
    if (cgroup.includes(name)) return name;
  }
  return null;
}

/** Whether a kill cgroup can be made here (made and removed at once). */
function canKillTree(): boolean {
  const cgroup = createKillCgroup();
  if (!cgroup) return false;
  try {
    Deno.removeSync(cgroup.procsPath.slice(0, -"/cgroup.procs".length));
  } catch {
    // Left for the next supervisor to reuse nothing of; it is empty.
  }
  return true;
}

/**
 * The facts about this system that the probe report is built from.
 *
 * @example
 * ```ts
 * import { gatherSystemFacts } from "./probe.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(typeof gatherSystemFacts().landlockAbi, "number");
 * ```
 *
 * @returns The facts.
 */
export function gatherSystemFacts(): SystemFacts {
  const kernel = probeKernel();
  const release = read("/proc/sys/kernel/osrelease")?.trim() ?? "unknown";
  const seccompLine = read("/proc/self/status")?.match(/^Seccomp:\s+(\d+)/m);
  return {
    kernelRelease: release,
    arch: kernel.arch,
    landlockAbi: kernel.landlockAbi,
    landlockErrno: kernel.landlockErrno,
    lsms: read("/sys/kernel/security/lsm")?.trim().split(","),
    seccompActions: read("/proc/sys/kernel/seccomp/actions_avail")?.trim().split(/\s+/),
    processSeccompMode: seccompLine ? Number(seccompLine[1]) : undefined,
    root: Deno.uid() === 0,
    container: detectContainer(),
    wsl: /microsoft|wsl/i.test(release),
    killCgroup: canKillTree(),
    limits: limitFacts(),
  };
}

/**
 * What this system can enforce, and why not when it cannot.
 *
 * @example
 * ```ts
 * import { probeSystem } from "./probe.ts";
 *
 * const report = probeSystem();
 * console.log(report.landlockAbi, report.verdict);
 * ```
 *
 * @returns The report `--probe --json` prints.
 */
export function probeSystem(): ProbeReport {
  return buildProbeReport(gatherSystemFacts());
}
