// End to end: what the command may write, and what it inherits. Every denial first shows the
// same action succeeding without the sandbox.

import assert from "node:assert/strict";
import { exists, MODES, run, runCli, skipReason, tempDir, which } from "./_helpers.ts";

Deno.test("reading the root works inside the sandbox", async (t) => {
  for (const mode of MODES) {
    await t.step(mode.name, async () => {
      const out = await runCli([...mode.flags, "--", "ls", "-l", "/bin"]);
      assert.equal(out.code, 0, out.stderr);
      assert.notEqual(out.stdout, "");
    });
  }
});

Deno.test("writing outside every writable root is denied", async (t) => {
  const dir = tempDir();
  try {
    const control = `${dir}/control`;
    const direct = await run("sh", ["-c", `echo blah > ${control}`]);
    assert.equal(direct.code, 0, "positive control: the write works without the sandbox");
    assert.equal(Deno.readTextFileSync(control), "blah\n");
    for (const mode of MODES) {
      await t.step(mode.name, async () => {
        const target = `${dir}/denied-${mode.flags.length}`;
        const out = await runCli([...mode.flags, "--", "sh", "-c", `echo blah > ${target}`]);
        assert.notEqual(out.code, 0);
        assert.match(out.stderr, /Permission denied/);
        assert.equal(exists(target), false);
        const truncate = await runCli([...mode.flags, "--", "sh", "-c", `: > ${control}`]);
        assert.notEqual(truncate.code, 0);
        assert.equal(Deno.readTextFileSync(control), "blah\n", "an existing file is not truncated");
      });
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("writing to /dev/null through a shell works inside the sandbox", async (t) => {
  for (const mode of MODES) {
    await t.step(mode.name, async () => {
      const out = await runCli([
        ...mode.flags,
        "--",
        "sh",
        "-c",
        "echo blah > /dev/null && echo written",
      ]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout, "written\n");
    });
  }
});

Deno.test("a writable root can be written, and only it", async (t) => {
  const dir = tempDir();
  const other = tempDir();
  try {
    for (const mode of MODES) {
      await t.step(`${mode.name}: disk-write-folder`, async () => {
        const file = `${dir}/test-${mode.flags.length}`;
        const out = await runCli([
          ...mode.flags,
          "-s",
          `disk-write-folder=${dir}`,
          "--",
          "sh",
          "-c",
          `echo blah > ${file} && mkdir ${file}.d && ln -s x ${file}.l && rm ${file}.l`,
        ]);
        assert.equal(out.code, 0, out.stderr);
        assert.equal(Deno.readTextFileSync(file), "blah\n");
        const outside = await runCli([
          ...mode.flags,
          "-s",
          `disk-write-folder=${dir}`,
          "--",
          "sh",
          "-c",
          `echo blah > ${other}/x`,
        ]);
        assert.notEqual(outside.code, 0);
        assert.equal(exists(`${other}/x`), false);
      });
      await t.step(`${mode.name}: disk-write-cwd with --cwd`, async () => {
        const out = await runCli([
          ...mode.flags,
          "-s",
          "disk-write-cwd",
          "--cwd",
          dir,
          "--",
          "sh",
          "-c",
          `pwd && echo blah > cwd-${mode.flags.length}`,
        ]);
        assert.equal(out.code, 0, out.stderr);
        assert.equal(out.stdout, `${dir}\n`);
        assert.equal(Deno.readTextFileSync(`${dir}/cwd-${mode.flags.length}`), "blah\n");
      });
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
    Deno.removeSync(other, { recursive: true });
  }
});

const notRoot = Deno.uid() === 0 ? undefined : "needs root for the positive control (mknod)";
Deno.test({
  name: skipReason("a device node cannot be made even in a writable root", notRoot),
  ignore: notRoot !== undefined,
}, async (t) => {
  const dir = tempDir();
  try {
    // Positive control: as root, mknod works here without the sandbox (1:3 is /dev/null's).
    const direct = await run("mknod", [`${dir}/control`, "c", "1", "3"]);
    assert.equal(direct.code, 0, `positive control: ${direct.stderr}`);
    assert.equal(Deno.lstatSync(`${dir}/control`).isCharDevice, true);
    Deno.removeSync(`${dir}/control`);
    for (const mode of MODES) {
      await t.step(mode.name, async () => {
        const node = `${dir}/node-${mode.flags.length}`;
        const out = await runCli([
          ...mode.flags,
          "-s",
          `disk-write-folder=${dir}`,
          "--",
          "sh",
          "-c",
          `mkfifo ${node}.fifo && mknod ${node} c 1 3`,
        ]);
        assert.notEqual(out.code, 0);
        assert.match(out.stderr, /Permission denied/);
        assert.equal(exists(`${node}.fifo`), true, "other nodes can still be made");
        assert.equal(exists(node), false);
      });
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("an inherited descriptor on a file outside cannot be written", async (t) => {
  const dir = tempDir();
  try {
    const file = `${dir}/outside`;
    Deno.writeTextFileSync(file, "");
    const direct = await run("sh", ["-c", `exec 3>>${file}; sh -c 'echo leaked >&3'`]);
    assert.equal(direct.code, 0, "positive control: the inherited descriptor writes");
    assert.equal(Deno.readTextFileSync(file), "leaked\n");
    Deno.writeTextFileSync(file, "");
    for (const mode of MODES) {
      await t.step(mode.name, async () => {
        const cli = [
          Deno.execPath(),
          "run",
          "-A",
          "--quiet",
          new URL("../main.ts", import.meta.url).pathname,
          ...mode.flags,
        ];
        const out = await run("sh", [
          "-c",
          `exec 3>>${file}; exec "$@" -- sh -c 'echo leaked >&3'`,
          "sh",
          ...cli,
        ]);
        assert.notEqual(out.code, 0);
        assert.match(out.stderr, /Bad file descriptor|bad file descriptor|3/);
        assert.equal(Deno.readTextFileSync(file), "");
      });
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the command runs with NoNewPrivs and a seccomp filter", async (t) => {
  const direct = await run("grep", ["-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status"]);
  assert.match(direct.stdout, /NoNewPrivs:\s+0/, "positive control: unset without the sandbox");
  for (const mode of MODES) {
    await t.step(mode.name, async () => {
      const out = await runCli([
        ...mode.flags,
        "--",
        "grep",
        "-E",
        "^(NoNewPrivs|Seccomp):",
        "/proc/self/status",
      ]);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /NoNewPrivs:\s+1/);
      assert.match(out.stdout, /Seccomp:\s+2/);
    });
  }
});

Deno.test("the command does not inherit Deno's ignored SIGPIPE", async (t) => {
  const SIGPIPE_BIT = 1n << 12n;
  const ignored = (status: string) => BigInt("0x" + /SigIgn:\s+([0-9a-f]+)/.exec(status)![1]);
  // Positive control: Deno itself ignores SIGPIPE, so an exec'd program would inherit that.
  const deno = await run(Deno.execPath(), [
    "eval",
    "console.log(Deno.readTextFileSync('/proc/self/status'))",
  ]);
  assert.equal(ignored(deno.stdout) & SIGPIPE_BIT, SIGPIPE_BIT);
  for (const mode of MODES) {
    await t.step(mode.name, async () => {
      const out = await runCli([...mode.flags, "--", "cat", "/proc/self/status"]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(ignored(out.stdout) & SIGPIPE_BIT, 0n);
      assert.match(out.stdout, /SigBlk:\s+0+\n/);
      const pipe = await runCli([...mode.flags, "--", "sh", "-c", "yes | head -n 1"]);
      assert.equal(pipe.stdout, "y\n");
    });
  }
});

Deno.test(
  {
    name: skipReason("a signal cannot reach a process outside the sandbox", missingSleep()),
    ignore: missingSleep() !== undefined,
  },
  async (t) => {
    // Positive control: an unsandboxed kill reaches a process this test started.
    const victim = new Deno.Command("sleep", { args: ["60"] }).spawn();
    const direct = await run("kill", ["-TERM", String(victim.pid)]);
    assert.equal(direct.code, 0);
    assert.equal((await victim.status).signal, "SIGTERM");
    for (const mode of MODES) {
      await t.step(mode.name, async () => {
        const target = new Deno.Command("sleep", { args: ["60"] }).spawn();
        try {
          const out = await runCli([...mode.flags, "--", "kill", "-TERM", String(target.pid)]);
          assert.notEqual(out.code, 0);
          assert.match(out.stderr, /not permitted/i);
          // Still running: not a zombie waiting to be reaped.
          const stat = Deno.readTextFileSync(`/proc/${target.pid}/stat`);
          assert.notEqual(stat.slice(stat.lastIndexOf(")") + 2)[0], "Z");
        } finally {
          target.kill("SIGKILL");
          await target.status;
        }
      });
    }
  },
);

function missingSleep(): string | undefined {
  return which("sleep") && which("kill") ? undefined : "sleep or kill not installed";
}
