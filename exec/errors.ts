/**
 * The error that means "nothing was run": the sandbox could not be applied as asked.
 *
 * @module
 */

/** Why the command did not run. */
export type SandboxErrorKind =
  /** Landlock is needed for this policy and the kernel has none. */
  | "landlock-unavailable"
  /** The child failed while applying the plan (a syscall refused, a root vanished). */
  | "apply-failed"
  /** The child ended before it could apply the plan or report why. */
  | "child-failed";

/** Thrown when the sandbox cannot be applied; the command did not run. */
export class SandboxError extends Error {
  /** What went wrong, to switch on. */
  readonly kind: SandboxErrorKind;

  /**
   * @param kind What went wrong.
   * @param message What happened and what to do.
   */
  constructor(kind: SandboxErrorKind, message: string) {
    super(message);
    this.name = "SandboxError";
    this.kind = kind;
  }
}
