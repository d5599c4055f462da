/**
 * The supervisor's answer to the command's `listen()` calls, which the seccomp filter hands to
 * it (see policy/listen.ts): it takes the command's socket, looks at what it is bound to, and
 * performs the `listen()` itself on that very socket when the policy allows it, so that no
 * other socket can be swapped in between the look and the act.
 *
 * @module
 */

import { decideListen, type ListenPolicy } from "../policy/listen.ts";
import {
  close,
  listenOn,
  type Notification,
  receive,
  respond,
  socketName,
  stillWaiting,
  takeDescriptor,
  waitForRequest,
} from "../ffi/notify.ts";
import { makePipe, writeAll } from "../ffi/descriptors.ts";
import { SyscallError } from "../ffi/libc.ts";

// From include/uapi/asm-generic/errno-base.h and errno.h.
const EBADF = 9;
const ENOTSOCK = 88;

/** A running `listen()` supervisor. */
export interface ListenSupervisor {
  /** Stops answering (the command has ended) and closes the listener. */
  stop(): Promise<void>;
}

/**
 * Answers the command's `listen()` calls until the command is gone or `stop()` is called.
 * @param listener The filter's listener, taken from the child; owned from now on.
 * @param policy What may listen.
 * @returns The supervisor.
 */
export function superviseListen(listener: number, policy: ListenPolicy): ListenSupervisor {
  const stop = makePipe();
  const loop = (async () => {
    try {
      while (await waitForRequest(listener, stop.read) === "request") {
        const request = receive(listener);
        if (request) answer(listener, request, policy);
      }
    } catch {
      // The supervisor goes on: a command whose listen() is never answered fails itself.
    } finally {
      close(listener);
    }
  })();
  let stopped: Promise<void> | undefined;
  return {
    stop() {
      // Both ends stay open until the loop is over: the wake-up can always be written.
      stopped ??= (async () => {
        writeAll(stop.write, new Uint8Array([1]));
        await loop;
        close(stop.read);
        close(stop.write);
      })();
      return stopped;
    },
  };
}

function answer(listener: number, request: Notification, policy: ListenPolicy): void {
  const fd = Number(BigInt.asIntN(32, request.args[0]));
  const backlog = Number(BigInt.asIntN(32, request.args[1]));
  let socket: number;
  try {
    socket = takeDescriptor(request.pid, fd);
  } catch (error) {
    respond(listener, request.id, error instanceof SyscallError ? error.errno : EBADF);
    return;
  }
  try {
    // Taken while the caller still waits: the descriptor is the caller's own socket.
    if (!stillWaiting(listener, request.id)) return;
    let errno: number;
    try {
      errno = decideListen(socketName(socket), policy);
    } catch {
      errno = ENOTSOCK;
    }
    respond(listener, request.id, errno === 0 ? listenOn(socket, backlog) : errno);
  } finally {
    close(socket);
  }
}
