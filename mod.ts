/**
 * llmx-sandbox: run untrusted commands on Linux so that they can read the machine but write
 * only where allowed, and reach no network. Landlock restricts the files, a seccomp filter the
 * network; both are applied in a re-executed child, never in the calling program.
 *
 * The parent decides (a pure plan), the child only applies it and `execve`s the command.
 * Programs that import this module need `--allow-all` (the child uses FFI).
 *
 * @example Run a command that may write only in a temporary folder
 * ```ts ignore
 * import { planSandbox, probeKernel, runSupervised, SandboxPolicy } from "./mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const policy = SandboxPolicy.readOnlyWithWritableRoots([dir]);
 * const plan = planSandbox(
 *   policy,
 *   { argv: ["sh", "-c", "echo hi > out.txt"], cwd: dir, env: { PATH: "/usr/bin:/bin" } },
 *   probeKernel(),
 * );
 * const status = await runSupervised(plan, { timeoutMs: 10_000 });
 * console.log(status.exitCode); // 0
 * ```
 *
 * @module
 */

export {
  formatPermission,
  InvalidPermissionError,
  parsePermission,
  PERMISSION_NAMES,
  type SandboxPermission,
  type SimplePermissionName,
} from "./policy/permission.ts";
export {
  type PathHost,
  PolicyError,
  type PolicyErrorKind,
  SandboxPolicy,
  systemPathHost,
} from "./policy/sandbox_policy.ts";
export {
  type CommandSpec,
  type KernelFacts,
  type PlanHost,
  planSandbox,
  type SandboxPlan,
  systemPlanHost,
} from "./policy/plan.ts";
export type { LandlockPlan, LandlockRule } from "./policy/landlock.ts";
export type { BpfInstruction, SeccompPlan, SeccompRule } from "./policy/seccomp.ts";
export { probeKernel } from "./exec/kernel.ts";
export {
  EXIT_TIMEOUT,
  runSupervised,
  type SupervisedStatus,
  type SuperviseOptions,
} from "./exec/supervise.ts";
export { SandboxError, type SandboxErrorKind } from "./exec/errors.ts";
export { EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_SANDBOX_FAILED } from "./exec/child.ts";
