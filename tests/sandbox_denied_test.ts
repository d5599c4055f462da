// The "looks denied by the sandbox" heuristic, on the messages real tools print. Pure: no
// process is started.

import assert from "node:assert/strict";
import { type DenialEvidence, looksSandboxDenied } from "../mod.ts";

const failed: DenialEvidence = {
  exitCode: 1,
  signal: null,
  timedOut: false,
  stdout: "",
  stderr: "",
};

Deno.test("looksSandboxDenied() never calls a successful command denied", async (t) => {
  await t.step("control: the same output with exit code 1 is a denial", () => {
    assert.equal(
      looksSandboxDenied({ ...failed, stderr: "sh: 1: cannot create x: Permission denied" }),
      true,
    );
  });
  await t.step("exit code 0 with a permission error on stderr", () => {
    assert.equal(
      looksSandboxDenied({
        ...failed,
        exitCode: 0,
        stderr: "sh: 1: cannot create x: Permission denied",
      }),
      false,
    );
  });
  await t.step("exit code 0 with a permission error on stdout", () => {
    assert.equal(
      looksSandboxDenied({
        ...failed,
        exitCode: 0,
        stdout: "ls: cannot open directory '/root': Permission denied",
      }),
      false,
    );
  });
});

Deno.test("looksSandboxDenied() never calls a timeout denied", async (t) => {
  await t.step("control: the same output without the timeout is a denial", () => {
    assert.equal(
      looksSandboxDenied({
        ...failed,
        exitCode: 137,
        signal: "SIGKILL",
        stderr: "Permission denied",
      }),
      true,
    );
  });
  await t.step("timed out with a permission error in its output", () => {
    assert.equal(
      looksSandboxDenied({
        ...failed,
        exitCode: 124,
        signal: "SIGKILL",
        timedOut: true,
        stderr: "Permission denied",
      }),
      false,
    );
  });
  await t.step("timed out killed by SIGSYS", () => {
    assert.equal(
      looksSandboxDenied({ ...failed, exitCode: 124, signal: "SIGSYS", timedOut: true }),
      false,
    );
  });
});

Deno.test("looksSandboxDenied() calls a command killed by SIGSYS denied, whatever it printed", () => {
  assert.equal(looksSandboxDenied({ ...failed, exitCode: 159, signal: "SIGSYS" }), true);
  assert.equal(looksSandboxDenied({ ...failed, exitCode: 159, signal: "SIGSEGV" }), false);
});

Deno.test("looksSandboxDenied() recognises the permission errors of common tools", async (t) => {
  const messages: [tool: string, message: string][] = [
    ["dash", "sh: 1: cannot create /etc/x: Permission denied"],
    ["bash", "bash: line 1: /etc/x: Permission denied"],
    ["coreutils (EACCES)", "touch: cannot touch '/etc/x': Permission denied"],
    ["coreutils (EPERM)", "mkdir: cannot create directory '/etc/x': Operation not permitted"],
    ["coreutils (read-only mount)", "touch: cannot touch '/mnt/x': Read-only file system"],
    ["python (EACCES)", "PermissionError: [Errno 13] Permission denied: '/etc/x'"],
    ["python (EPERM)", "PermissionError: [Errno 1] Operation not permitted"],
    ["python OSError", "OSError: [Errno 13] something"],
    ["node (EACCES)", "Error: EACCES: open '/etc/x'"],
    ["node (EPERM)", "Error: EPERM, socket"],
    ["rust", 'Error: Os { code: 13, kind: PermissionDenied, message: "Permission denied" }'],
    ["go", "open /etc/x: permission denied"],
    ["ping (seccomp EPERM)", "ping: socket: Operation not permitted"],
    ["upper case", "PERMISSION DENIED"],
  ];
  for (const [tool, message] of messages) {
    await t.step(`${tool} on stderr`, () => {
      assert.equal(looksSandboxDenied({ ...failed, stderr: `${message}\n` }), true);
    });
    await t.step(`${tool} on stdout`, () => {
      assert.equal(looksSandboxDenied({ ...failed, exitCode: 2, stdout: `${message}\n` }), true);
    });
  }
});

Deno.test("looksSandboxDenied() does not call ordinary failures denied", async (t) => {
  const messages: [what: string, message: string][] = [
    ["empty output", ""],
    ["missing file", "cat: /nope: No such file or directory"],
    ["python missing file", "FileNotFoundError: [Errno 2] No such file or directory: '/nope'"],
    [
      "python EAGAIN (Errno 11 is not Errno 1)",
      "BlockingIOError: [Errno 11] Resource temporarily unavailable",
    ],
    ["test failure", "test failed"],
    ["a word that contains EPERM", "SLEEPERMODE=1"],
    ["command not found", "sh: 1: frobnicate: not found"],
  ];
  for (const [what, message] of messages) {
    await t.step(what, () => {
      assert.equal(looksSandboxDenied({ ...failed, stderr: message, stdout: message }), false);
    });
  }
  await t.step("killed by SIGKILL with no output", () => {
    assert.equal(looksSandboxDenied({ ...failed, exitCode: 137, signal: "SIGKILL" }), false);
  });
});
