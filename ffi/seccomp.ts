/**
 * Installing a compiled seccomp program on the calling thread.
 *
 * @module
 */

import type { BpfInstruction } from "../policy/seccomp.ts";
import { addressOf, syscall } from "./libc.ts";

// From include/uapi/linux/seccomp.h.
const SECCOMP_SET_MODE_FILTER = 1;
const SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3;

/**
 * Encodes a program as `struct sock_filter[]` bytes.
 * @param program The instructions.
 * @returns 8 bytes per instruction, little-endian.
 */
export function encodeProgram(program: readonly BpfInstruction[]): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(program.length * 8);
  const view = new DataView(bytes.buffer);
  program.forEach(({ code, jt, jf, k }, i) => {
    view.setUint16(i * 8, code, true);
    view.setUint8(i * 8 + 2, jt);
    view.setUint8(i * 8 + 3, jf);
    view.setUint32(i * 8 + 4, k, true);
  });
  return bytes;
}

/**
 * Installs the program as a seccomp filter on the calling thread. `PR_SET_NO_NEW_PRIVS` must
 * already be set.
 * @param program The compiled filter.
 * @param listener Whether the filter hands some syscalls to a supervisor
 * (`SECCOMP_RET_USER_NOTIF`): then the kernel gives a listener descriptor (close-on-exec).
 * @returns The listener's descriptor, or -1 without one.
 * @throws {SyscallError} When the kernel refuses it.
 */
export function installSeccomp(program: readonly BpfInstruction[], listener = false): number {
  const filter = encodeProgram(program);
  // struct sock_fprog { unsigned short len; struct sock_filter *filter; } (pointer at offset 8)
  const fprog = new BigUint64Array([BigInt(program.length), addressOf(filter)]);
  const flags = listener ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
  const result = syscall("seccomp", SECCOMP_SET_MODE_FILTER, flags, addressOf(fprog));
  // Keeps the filter alive across the call: `fprog` holds only its address.
  if (filter.length !== program.length * 8) throw new Error("unreachable");
  return listener ? Number(result) : -1;
}
