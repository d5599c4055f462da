/**
 * What this system can enforce: the `--probe` report, built from facts gathered elsewhere.
 * Pure, so that every kernel this tool may meet can be tested on one.
 *
 * @module
 */

import { LANDLOCK_ABI_LATEST, planLandlock } from "./landlock.ts";
import {
  type LimitEnforcement,
  type LimitFacts,
  type LimitMechanism,
  type LimitName,
  planLimits,
} from "./limits.ts";

/** What the probe gathers from the system. */
export interface SystemFacts {
  /** `uname -r`. */
  kernelRelease: string;
  /** The architecture, as Deno names it. */
  arch: string;
  /** The Landlock ABI, 0 when unavailable. */
  landlockAbi: number;
  /** The errno of the ABI query when it failed. */
  landlockErrno?: number;
  /** The active LSMs from `/sys/kernel/security/lsm`, when readable. */
  lsms?: string[];
  /** `/proc/sys/kernel/seccomp/actions_avail`, when readable. */
  seccompActions?: string[];
  /** This process's `Seccomp:` mode from `/proc/self/status` (2: a filter is already on it). */
  processSeccompMode?: number;
  /** Whether we run as root. */
  root: boolean;
  /** The container runtime we seem to run in, or `null`. */
  container: string | null;
  /** Whether this is Windows Subsystem for Linux. */
  wsl: boolean;
  /** Whether a cgroup with `cgroup.kill` can be made for each supervised command. */
  killCgroup?: boolean;
  /** What this system offers for resource limits; absent: not looked at. */
  limits?: LimitFacts;
}

/** How one resource limit would be enforced here. */
export interface ProbeLimit {
  /** Which limit. */
  name: LimitName;
  /** Its option, e.g. `--max-memory`. */
  option: string;
  /** What would enforce it, or `null` when nothing can here (asking for it is refused). */
  mechanism: LimitMechanism | null;
  /**
   * `full`: for the run as a whole; `partial`: for each process (or the user) only; `none`:
   * not at all.
   */
  enforcement: LimitEnforcement;
}

/** One Landlock feature and whether this kernel has it. */
export interface LandlockFeature {
  /** A stable key. */
  key: string;
  /** For people. */
  name: string;
  /** The ABI that brought it. */
  abi: number;
  /** Whether this kernel's ABI has it. */
  available: boolean;
}

/** The `--probe --json` object; its keys are stable and documented in the README. */
export interface ProbeReport {
  /** `uname -r`. */
  kernelRelease: string;
  /** The architecture. */
  arch: string;
  /** A number: 0 when Landlock is absent or disabled. */
  landlockAbi: number;
  /** Why `landlockAbi` is 0, and what to do; `null` otherwise. */
  landlockReason: string | null;
  /** Each Landlock feature this tool uses, with the ABI that brought it. */
  landlockFeatures: LandlockFeature[];
  /** Whether seccomp filters with the actions we need are available, and why not. */
  seccomp: { available: boolean; reason: string | null };
  /** Whether we run as root. */
  root: boolean;
  /** The container runtime we seem to run in, or `null`. */
  container: string | null;
  /** Whether this is Windows Subsystem for Linux. */
  wsl: boolean;
  /**
   * How a timeout or an abort ends everything the command started: `cgroup` (every descendant,
   * also those that left the process group) or `process-group` (a descendant that called
   * `setsid` survives).
   */
  processTree: "cgroup" | "process-group";
  /**
   * Whether `network-domain` can run here: Landlock's TCP rules (ABI 4) let the command connect
   * to the proxy's port alone, and seccomp allows only TCP sockets.
   */
  networkDomains: boolean;
  /**
   * How each `--max-*` limit would be enforced here, for the user running the probe (the
   * default process cap included, as `processes`); empty when not looked at.
   */
  limits: ProbeLimit[];
  /** How the default (read-only, no network) policy would be enforced here. */
  verdict: "full" | "partial" | "none";
  /** What would be dropped on this kernel, in words. */
  dropped: string[];
}

const FEATURES: readonly Omit<LandlockFeature, "available">[] = [
  { key: "filesystem", name: "filesystem rights", abi: 1 },
  { key: "refer", name: "renaming and linking across folders (refer)", abi: 2 },
  { key: "truncate", name: "truncate", abi: 3 },
  { key: "tcp", name: "TCP bind and connect rules", abi: 4 },
  { key: "ioctlDev", name: "device ioctls", abi: 5 },
  { key: "scopes", name: "scoping of abstract UNIX sockets and signals", abi: 6 },
  { key: "auditLogging", name: "audit logging of denials", abi: 7 },
];

const ENOSYS = 38;
const EOPNOTSUPP = 95;
const EPERM = 1;

function landlockReason(facts: SystemFacts): string | null {
  if (facts.landlockAbi > 0) return null;
  const blocked = facts.processSeccompMode === 2;
  switch (facts.landlockErrno) {
    case ENOSYS:
      return blocked
        ? "the Landlock system calls answer ENOSYS under this process's seccomp filter (a " +
          "container's profile?): allow landlock_create_ruleset, landlock_add_rule and " +
          "landlock_restrict_self, or run outside the container"
        : "this kernel has no Landlock (ENOSYS): it needs Linux 5.13+ built with " +
          "CONFIG_SECURITY_LANDLOCK=y";
    case EOPNOTSUPP:
      return "Landlock is built in but not enabled (EOPNOTSUPP): add landlock to the lsm= " +
        `boot parameter${facts.lsms ? ` (now: ${facts.lsms.join(",")})` : ""}`;
    case EPERM:
      return "the Landlock system calls are refused (EPERM), likely by a container's seccomp " +
        "profile: allow them, or run outside the container";
    default:
      return `the Landlock ABI query failed (errno ${facts.landlockErrno ?? "unknown"})`;
  }
}

/**
 * Builds the probe report from the facts.
 *
 * @example
 * ```ts
 * import { buildProbeReport } from "./probe_report.ts";
 * import assert from "node:assert/strict";
 *
 * const report = buildProbeReport({
 *   kernelRelease: "6.1.0", arch: "x86_64", landlockAbi: 0, landlockErrno: 95,
 *   seccompActions: ["kill_process", "errno", "allow"], root: false, container: null, wsl: false,
 * });
 * assert.equal(report.verdict, "none");
 * assert.match(report.landlockReason!, /lsm=/);
 * ```
 *
 * @param facts What was gathered.
 * @returns The report.
 */
export function buildProbeReport(facts: SystemFacts): ProbeReport {
  const seccompAvailable = facts.seccompActions !== undefined &&
    ["kill_process", "errno", "allow"].every((action) => facts.seccompActions!.includes(action));
  const landlock = planLandlock({
    abi: facts.landlockAbi,
    restrictWrites: true,
    restrictNetwork: true,
    root: { path: "/", isDirectory: true, dev: 0, ino: 0 },
    writableRoots: [],
    devices: [],
    restrictReads: true,
  });
  const dropped = [...landlock.dropped];
  if (!seccompAvailable) dropped.push("seccomp filters are not available: no network restriction");
  return {
    kernelRelease: facts.kernelRelease,
    arch: facts.arch,
    landlockAbi: facts.landlockAbi,
    landlockReason: landlockReason(facts),
    landlockFeatures: FEATURES.map((feature) => ({
      ...feature,
      available: facts.landlockAbi >= feature.abi,
    })),
    seccomp: {
      available: seccompAvailable,
      reason: seccompAvailable
        ? null
        : facts.seccompActions === undefined
        ? "this kernel has no seccomp filter support (CONFIG_SECCOMP_FILTER)"
        : `the kernel lacks seccomp actions we need (has: ${facts.seccompActions.join(" ")})`,
    },
    root: facts.root,
    container: facts.container,
    wsl: facts.wsl,
    processTree: facts.killCgroup ? "cgroup" : "process-group",
    networkDomains: facts.landlockAbi >= 4 && seccompAvailable,
    limits: probeLimits(facts.limits),
    verdict: !seccompAvailable ? "none" : landlock.enforcement,
    dropped,
  };
}

/** Each limit, planned with a sample value, to see what would enforce it. */
function probeLimits(facts: LimitFacts | undefined): ProbeLimit[] {
  if (facts === undefined) return [];
  const plan = planLimits({
    memoryBytes: 1024 ** 3,
    cpuMs: 60000,
    fileSizeBytes: 1024 ** 3,
    openFiles: 1024,
  }, facts);
  return plan.limits.map((limit) => ({
    name: limit.name,
    option: limit.option,
    mechanism: limit.mechanism,
    enforcement: limit.enforcement,
  }));
}

const CGROUP_WORDS = {
  "cgroup-v2": "cgroup v2, for the whole run",
  "cgroup-v1": "cgroup v1, for the whole run",
};
const RLIMIT_WORDS: Readonly<Record<LimitName, string>> = {
  memory: "RLIMIT_AS, address space of each process",
  processes: "RLIMIT_NPROC, every process of the user",
  cpu: "RLIMIT_CPU, CPU time of each process",
  "file-size": "RLIMIT_FSIZE, each file written",
  "open-files": "RLIMIT_NOFILE, descriptors of each process",
};

/**
 * The report as a table for people.
 *
 * @example
 * ```ts
 * import { buildProbeReport, formatProbeReport } from "./probe_report.ts";
 * import assert from "node:assert/strict";
 *
 * const text = formatProbeReport(buildProbeReport({
 *   kernelRelease: "6.8.0", arch: "x86_64", landlockAbi: 4,
 *   seccompActions: ["kill_process", "errno", "allow"], root: false, container: null, wsl: false,
 * }));
 * assert.match(text, /^verdict\s+partial/m);
 * ```
 *
 * @param report The report.
 * @returns Lines of text, ending with a newline.
 */
export function formatProbeReport(report: ProbeReport): string {
  const yes = (value: boolean) => value ? "yes" : "no";
  const lines = [
    `kernel              ${report.kernelRelease} (${report.arch})`,
    `landlock            ${
      report.landlockAbi ? `ABI ${report.landlockAbi}` : `none: ${report.landlockReason}`
    }${report.landlockAbi > LANDLOCK_ABI_LATEST ? ` (newest known: ${LANDLOCK_ABI_LATEST})` : ""}`,
    ...report.landlockFeatures.map((feature) =>
      `  ${`${feature.name} (ABI ${feature.abi})`.padEnd(56)}${yes(feature.available)}`
    ),
    `seccomp filters     ${report.seccomp.available ? "yes" : `no: ${report.seccomp.reason}`}`,
    `running as root     ${yes(report.root)}`,
    `container           ${report.container ?? "none detected"}`,
    `WSL                 ${yes(report.wsl)}`,
    `process tree kill   ${
      report.processTree === "cgroup"
        ? "yes (a cgroup per command: every descendant dies with it)"
        : "process group only (no usable cgroup v2 with cgroup.kill: a setsid descendant survives)"
    }`,
    `network by domain   ${
      report.networkDomains
        ? "yes (through the proxy: TCP connect to its port only, no other socket)"
        : "no (needs Landlock ABI 4 for TCP rules, and seccomp)"
    }`,
    ...(report.limits.length ? ["resource limits"] : []),
    ...report.limits.map((limit) =>
      `  ${limit.option.padEnd(18)}${
        limit.mechanism === null
          ? "no (nothing can enforce it here; asking for it is refused)"
          : limit.mechanism === "rlimit"
          ? RLIMIT_WORDS[limit.name]
          : CGROUP_WORDS[limit.mechanism]
      }`
    ),
    `verdict             ${report.verdict}: ${
      {
        full: "the default policy is fully enforced here",
        partial: "the default policy runs, partially enforced",
        none: "nothing can run sandboxed here",
      }[report.verdict]
    }`,
    ...report.dropped.map((line) => `  - ${line}`),
  ];
  return lines.join("\n") + "\n";
}
