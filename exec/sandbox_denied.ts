/**
 * A heuristic for "the sandbox probably stopped this command", so that callers can tell a
 * denial from an ordinary failure without treating every non-zero exit as one (which trains
 * them to retry unsandboxed).
 *
 * @module
 */

/** What the heuristic looks at. */
export interface DenialEvidence {
  /** The exit code. */
  exitCode: number;
  /** The signal that killed the command, if any. */
  signal: string | null;
  /** Whether the timeout killed it (never a denial). */
  timedOut: boolean;
  /** The command's stdout, as captured. */
  stdout: string;
  /** The command's stderr, as captured. */
  stderr: string;
}

/**
 * The messages that EACCES and EPERM (what Landlock and seccomp return) and a read-only
 * filesystem produce in common tools and runtimes.
 */
const DENIAL_PATTERNS: readonly RegExp[] = [
  /permission denied/i,
  /operation not permitted/i,
  /read-only file system/i,
  /\bE(ACCES|PERM)\b/,
  /PermissionError/,
  /\[Errno (1|13)\]/,
];

/**
 * Whether a finished command looks denied by the sandbox: it failed (non-zero exit, not a
 * timeout) and either seccomp killed it (SIGSYS: a foreign architecture or an x32 syscall) or
 * its output carries a permission error. A hint, not a verdict: a command that fails with a
 * permission error outside the sandbox matches too, and one that swallows its errors does not.
 *
 * @example
 * ```ts
 * import { looksSandboxDenied } from "./sandbox_denied.ts";
 * import assert from "node:assert/strict";
 *
 * const base = { signal: null, timedOut: false, stdout: "" };
 * assert.equal(looksSandboxDenied({ ...base, exitCode: 1, stderr: "sh: 1: cannot create x: Permission denied" }), true);
 * assert.equal(looksSandboxDenied({ ...base, exitCode: 1, stderr: "test failed" }), false);
 * ```
 *
 * @param evidence The command's end and output.
 * @returns `true` when a denial is likely.
 */
export function looksSandboxDenied(evidence: DenialEvidence): boolean {
  if (evidence.timedOut || evidence.exitCode === 0) return false;
  if (evidence.signal === "SIGSYS") return true;
  return DENIAL_PATTERNS.some((pattern) =>
    pattern.test(evidence.stderr) || pattern.test(evidence.stdout)
  );
}
