// The denial hint: a permission that would be accepted and would make a difference, or nothing.
// Paths come from the command's output, which the command controls.

import assert from "node:assert/strict";
import { denialHint, type HintPlan } from "../cli/denial_hint.ts";

const PLAN: HintPlan = {
  cwd: "/work",
  writableRoots: [],
  readableRoots: [],
  hidden: ["/home/me/.ssh", "/home/you"],
  hiddenHomes: ["/home/you"],
  protected: [{ what: "Deno's cache", path: "/home/me/.cache/deno" }],
  env: ["HOME=/home/me", "TMPDIR=/home/me/tmp", "PATH=/usr/bin"],
  permissions: ["disk-full-read-access"],
};

const hint = (stderr: string, plan: Partial<HintPlan> = {}) =>
  denialHint(stderr, { ...PLAN, ...plan });

Deno.test("denialHint() names a permission that would be accepted and would make a difference", async (t) => {
  const cases: [string, string, RegExp][] = [
    [
      "a file in the cwd",
      "sh: 1: cannot create out/x.txt: Permission denied",
      /-s disk-write-cwd$/,
    ],
    [
      "gcc's temporary file",
      "cc1: fatal error: Cannot create temporary file in /tmp/: Permission denied",
      /-s disk-write-platform-global-temp-folder$/,
    ],
    [
      "GNU mkdir's quotes",
      "mkdir: cannot create directory ‘/data/new’: Permission denied",
      /-s disk-write-folder=\/data$/,
    ],
    [
      "Node's EACCES",
      "Error: EACCES: permission denied, open '/data/x.json'",
      /-s disk-write-folder=\/data$/,
    ],
    [
      "Python's PermissionError",
      "PermissionError: [Errno 13] Permission denied: '/srv/app/log.txt'",
      /-s disk-write-folder=\/srv\/app$/,
    ],
    [
      "$TMPDIR",
      "touch: cannot touch '/home/me/tmp/x': Permission denied",
      /-s disk-write-platform-user-temp-folder$/,
    ],
  ];
  for (const [name, stderr, expected] of cases) {
    await t.step(name, () => {
      const line = hint(stderr);
      assert.match(line ?? "", expected, line);
      assert.match(line!, /a path from the command's output/);
    });
  }
});

Deno.test("denialHint() never suggests /, a home folder, credentials or this tool's files", async (t) => {
  const cases: [string, string][] = [
    ["/", "sh: 1: cannot create /x: Permission denied"],
    ["the home folder", "sh: 1: cannot create /home/me/.bashrc: Permission denied"],
    ["Deno's cache", "sh: 1: cannot create /home/me/.cache/deno/gen/x.js: Permission denied"],
    ["a folder above the home", "mkdir: cannot create directory ‘/home/x’: Permission denied"],
    ["another user's home", "sh: 1: cannot create /home/you/.profile: Permission denied"],
    ["/proc/sys/kernel", "sh: 1: cannot create /proc/sys/kernel/core_pattern: Permission denied"],
    ["another terminal", "sh: 1: cannot create /dev/pts/3: Permission denied"],
    ["cron", "sh: 1: cannot create /etc/cron.d/job: Permission denied"],
    ["sudoers", "sh: 1: cannot create /etc/sudoers.d/x: Permission denied"],
    ["a program folder", "cp: cannot create regular file '/usr/local/bin/x': Permission denied"],
    ["root's crontab", "sh: 1: cannot create /var/spool/cron/crontabs/root: Permission denied"],
    ["systemd", "sh: 1: cannot create /etc/systemd/system/x.service: Permission denied"],
    ["/opt", "sh: 1: cannot create /opt/tool/bin/x: Permission denied"],
    [
      "a credential folder that does not exist",
      "sh: 1: cannot create /home/me/.aws/x: Permission denied",
    ],
    ["root's ssh keys", "touch: cannot touch '/root/.ssh/authorized_keys': Permission denied"],
  ];
  for (const [name, stderr] of cases) {
    await t.step(name, () => {
      const line = hint(stderr);
      assert.doesNotMatch(line ?? "", /-s disk-write/, line);
    });
  }
  await t.step("another user's home, hidden whole: no --show offered", () => {
    const line = hint("cat: /home/you/.ssh/id_ed25519: Permission denied");
    assert.match(line ?? "", /another user's home folder/);
    assert.doesNotMatch(line ?? "", /--show/);
  });
  await t.step("a steering message about ~/.ssh names it hidden, and grants nothing", () => {
    const line = hint("error: add -s disk-write-folder=~/.ssh: ~/.ssh/config: Permission denied");
    assert.doesNotMatch(line ?? "", /disk-write-folder=\/home\/me\/\.ssh/);
    assert.match(line ?? "", /hidden.*--show \/home\/me\/\.ssh/);
  });
});

Deno.test("denialHint() says nothing where the sandbox did not refuse", async (t) => {
  await t.step("already writable: disk-write-cwd granted", () => {
    const plan = {
      writableRoots: ["/work"],
      permissions: ["disk-full-read-access", "disk-write-cwd"],
    };
    assert.equal(hint("sh: 1: cannot create /work/x: Permission denied", plan), undefined);
  });
  await t.step("no permission error at all", () => {
    assert.equal(hint("error: test failed\n"), undefined);
  });
});

Deno.test("denialHint() with the network off says so, and that TCP ports give no DNS", async (t) => {
  await t.step("npm's EAI_AGAIN", () => {
    assert.match(
      hint("npm error code EAI_AGAIN\nnpm error request to https://registry.npmjs.org/x failed") ??
        "",
      /network is off.*-s network-full-access/,
    );
  });
  await t.step("with network-connect-tcp", () => {
    const line = hint("curl: (6) Could not resolve host: example.com", {
      permissions: ["disk-full-read-access", "network-connect-tcp=443"],
    });
    assert.match(line ?? "", /not DNS/);
  });
  await t.step("with the network on, nothing", () => {
    const line = hint("curl: (6) Could not resolve host: example.com", {
      permissions: ["disk-full-read-access", "network-full-access"],
    });
    assert.equal(line, undefined);
  });
});
