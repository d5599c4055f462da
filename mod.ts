/**
 * llmx-sandbox: run untrusted commands on Linux so that they can read the machine but write
 * only where allowed, and reach no network. Landlock restricts the files, a seccomp filter the
 * network; both are applied in a re-executed child, never in the calling program.
 *
 * `execSandboxed` runs a command to completion and returns its output; `spawnSandboxed` streams
 * it. A timeout or an abort kills the command and everything it started. Anything that keeps
 * the command from running in the sandbox as asked throws a `SandboxError` before it runs.
 * Programs that import this module need `--allow-all` (the child applies the sandbox with FFI).
 *
 * @example Run a command that may write only in its working folder
 * ```ts
 * import { execSandboxed } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const result = await execSandboxed(
 *   { command: ["sh", "-c", "echo hi > out.txt && cat out.txt"], cwd: dir, timeoutMs: 10_000 },
 *   ["disk-full-read-access", "disk-write-cwd"],
 * );
 * assert.equal(result.stdout, "hi\n");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

// First, so that a compiled program started as the internal child takes over at import time.
export { CHILD_FLAG } from "./exec/supervised_child.ts";
export {
  checkRunnable,
  DEFAULT_MAX_OUTPUT_BYTES,
  type ExecParams,
  execPlan,
  type ExecResult,
  execSandboxed,
  explainSandbox,
  type PolicyInput,
  prepareSandbox,
  type SandboxParams,
  type SpawnParams,
  spawnSandboxed,
} from "./exec/sandboxed.ts";
export {
  type ExecStatus,
  EXIT_TIMEOUT,
  type SandboxedProcess,
  type SpawnOptions,
  spawnPlan,
  type StdioMode,
} from "./exec/spawn.ts";
export { SandboxError, type SandboxErrorKind } from "./exec/errors.ts";
export type { NetworkDecision } from "./exec/proxy.ts";
export { type DenialEvidence, looksSandboxDenied } from "./exec/sandbox_denied.ts";
export { EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_SANDBOX_FAILED } from "./exec/child.ts";
export { probeKernel } from "./exec/kernel.ts";
export { gatherSystemFacts, probeSystem } from "./exec/probe.ts";
export {
  buildProbeReport,
  formatProbeReport,
  type LandlockFeature,
  type ProbeLimit,
  type ProbeReport,
  type SystemFacts,
} from "./policy/probe_report.ts";
export {
  type FolderPermissionName,
  formatPermission,
  InvalidPermissionError,
  parsePermission,
  PERMISSION_NAMES,
  type PortPermissionName,
  type SandboxPermission,
  type SimplePermissionName,
} from "./policy/permission.ts";
export {
  type PathHost,
  PolicyError,
  type PolicyErrorKind,
  type PolicyOptions,
  SandboxPolicy,
  systemPathHost,
} from "./policy/sandbox_policy.ts";
export {
  type CommandSpec,
  type KernelFacts,
  type PlanHost,
  planSandbox,
  type ProxyPlan,
  ROOT_WARNING,
  type SandboxPlan,
  type Supervision,
  systemPlanHost,
} from "./policy/plan.ts";
export type {
  FileIdentity,
  LandlockNetRule,
  LandlockPlan,
  LandlockRule,
} from "./policy/landlock.ts";
export type { EntryInfo } from "./policy/read_scope.ts";
export type { ListenPolicy } from "./policy/listen.ts";
export type { LoadedFile, ProtectedPlace } from "./policy/self_protection.ts";
export type { CapabilityPlan } from "./policy/capabilities.ts";
export type { RunAs } from "./policy/run_as.ts";
export {
  type CgroupTarget,
  type CgroupWrite,
  type ControllerFact,
  DEFAULT_MAX_PROCESSES,
  InvalidLimitError,
  LIMIT_NAMES,
  LIMIT_OPTIONS,
  type LimitEnforcement,
  type LimitFacts,
  type LimitMechanism,
  type LimitName,
  type LimitPlan,
  parseLimit,
  type PlannedLimit,
  type ResourceLimits,
  type RlimitResource,
  type RlimitSetting,
} from "./policy/limits.ts";
export type {
  ArgCondition,
  BpfInstruction,
  SeccompArch,
  SeccompPlan,
  SeccompRule,
  TcpAllowance,
} from "./policy/seccomp.ts";
