/**
 * The error that means "nothing was run": the command cannot run in the sandbox as asked.
 *
 * @module
 */

/**
 * Why the command did not run:
 * - `invalid-policy`: an unknown or malformed permission, or a writable root that is `/`;
 * - `missing-path`: the working folder or a writable folder does not exist;
 * - `invalid-command`: the command, its environment or an option cannot be used (a `runAs` that
 *   names nobody, or asked for by a caller that is not root);
 * - `landlock-unavailable`: writes must be restricted and the kernel has no Landlock;
 * - `partially-enforced`: full enforcement was required and this kernel cannot give it;
 * - `limit-unavailable`: a resource limit asked for cannot be enforced here (or set up);
 * - `apply-failed`: the child failed while applying the plan (a syscall refused, a root vanished);
 * - `child-failed`: the child ended before it could apply the plan or say why.
 */
export type SandboxErrorKind =
  | "invalid-policy"
  | "missing-path"
  | "invalid-command"
  | "landlock-unavailable"
  | "partially-enforced"
  | "limit-unavailable"
  | "apply-failed"
  | "child-failed";

/**
 * Thrown when the command cannot run in the sandbox as asked; the command did not run.
 *
 * @example
 * ```ts
 * import { SandboxError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new SandboxError("missing-path", "Writable folder does not exist: /nope");
 * assert.equal(error.kind, "missing-path");
 * ```
 */
export class SandboxError extends Error {
  /** What went wrong, to switch on. */
  readonly kind: SandboxErrorKind;

  /**
   * Makes the error.
   * @param kind What went wrong.
   * @param message What happened and what to do.
   * @param options The underlying error, if any.
   */
  constructor(kind: SandboxErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SandboxError";
    this.kind = kind;
  }
}
