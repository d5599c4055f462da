/**
 * A terminal's settings (`termios`), saved and put back: a supervised command may turn echo off
 * or put the terminal in raw mode through its standard input, and be killed before it restores
 * them.
 *
 * @module
 */

import { addressOf, syscall } from "./libc.ts";

// include/uapi/asm-generic/ioctls.h (x86_64 and aarch64 alike).
const TCGETS = 0x5401;
const TCSETS = 0x5402;
/** `struct termios` of the kernel is 36 bytes (NCCS 19); room to spare. */
const TERMIOS_BYTES = 64;

/**
 * Saves the settings of the terminal on `fd`.
 *
 * @example
 * ```ts
 * import { saveTerminal } from "./terminal.ts";
 *
 * const restore = saveTerminal(0); // undefined unless stdin is a terminal
 * restore?.();
 * ```
 *
 * @param fd A descriptor of this process.
 * @returns The function that puts them back where they changed (and never throws), or
 *   `undefined` when `fd` is not a terminal.
 */
export function saveTerminal(fd: number): (() => void) | undefined {
  const saved = new Uint8Array(TERMIOS_BYTES);
  try {
    syscall("ioctl", fd, TCGETS, addressOf(saved));
  } catch {
    return undefined;
  }
  return () => {
    const now = new Uint8Array(TERMIOS_BYTES);
    try {
      syscall("ioctl", fd, TCGETS, addressOf(now));
      // Only a change is put back: setting a terminal from a background job stops it (SIGTTOU).
      if (now.every((byte, i) => byte === saved[i])) return;
      syscall("ioctl", fd, TCSETS, addressOf(saved));
    } catch {
      // The terminal went away: nothing to put back.
    }
  };
}
