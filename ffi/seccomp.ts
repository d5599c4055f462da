/**
 * Installing a compiled seccomp program on the calling thread.
 *
 * @module
 */

import type { BpfInstruction } from "../policy/seccomp.ts";
import { addressOf, syscall } from "./libc.ts";

// From include/uapi/linux/seccomp.h.
const SECCOMP_SET_MODE_FILTER = 1;

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
 * @throws {SyscallError} When the kernel refuses it.
 */
export function installSeccomp(program: readonly BpfInstruction[]): void {
  const filter = encodeProgram(program);
  // struct sock_fprog { unsigned short len; struct sock_filter *filter; } (pointer at offset 8)
  const fprog = new BigUint64Array([BigInt(program.length), addressOf(filter)]);
  syscall("seccomp", SECCOMP_SET_MODE_FILTER, 0, addressOf(fprog));
  // Keeps the filter alive across the call: `fprog` holds only its address.
  if (filter.length !== program.length * 8) throw new Error("unreachable");
}
