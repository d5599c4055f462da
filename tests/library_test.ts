// The library API end to end, as a program uses it: execSandboxed and spawnSandboxed with their
// output, limits, timeout, abort and errors; and that nothing the command started outlives it.
// Every denial first shows the same action succeeding without the sandbox. Only processes these
// tests start, their temporary folders and cgroups named after their own pids are touched.

import { ownCgroupDir } from "../exec/cgroup.ts";
import assert from "node:assert/strict";
import {
  DEFAULT_MAX_OUTPUT_BYTES,
  type ExecResult,
  execSandboxed,
  type PolicyInput,
  SandboxError,
  type SandboxErrorKind,
  SandboxPolicy,
  spawnSandboxed,
} from "../mod.ts";
import { exists, NO_KILL_CGROUP, run, skipReason, tempDir } from "./_helpers.ts";

const MOD_URL = new URL("../mod.ts", import.meta.url).href;
const READ_ONLY: PolicyInput = ["disk-full-read-access"];
const WRITE_CWD: PolicyInput = ["disk-full-read-access", "disk-write-cwd"];

async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = tempDir();
  try {
    await body(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** A stream read as text a piece at a time: wait for a line, then for the end. */
function textReader(stream: ReadableStream<Uint8Array>) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  return {
    get text(): string {
      return text;
    },
    /** Reads until `pattern` matches what was read so far; throws if the stream ends first. */
    async until(pattern: RegExp): Promise<RegExpMatchArray> {
      for (;;) {
        const match = text.match(pattern);
        if (match) return match;
        const { value, done } = await reader.read();
        if (done) throw new Error(`The stream ended before ${pattern}: ${JSON.stringify(text)}`);
        text += value;
      }
    },
    /** Reads to the end of the stream; returns everything read. */
    async rest(): Promise<string> {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return text;
        text += value;
      }
    },
  };
}

interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  /** Start time in clock ticks after boot: tells a process from a later one with its pid. */
  start: string;
}

function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch (error) {
    if (!exists(`/proc/${pid}`)) return undefined;
    throw error;
  }
  // "PID (COMM) STATE PPID PGRP ...": COMM may hold spaces, so split after its ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0], ppid: Number(fields[1]), pgrp: Number(fields[2]), start: fields[19] };
}

/**
 * Asserts that a process is gone from /proc (a zombie does not count as gone). Its parent died
 * first, so it was reparented to init, which reaps when it likes (here about every 2 s) and tells
 * nobody: no signal or pipe can say when, so this polls, boundedly.
 */
async function assertGone(pid: number, start: string, what: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const stat = procStat(pid);
    if (stat === undefined || stat.start !== start) return;
    if (performance.now() > deadline) {
      assert.fail(`${what} (pid ${pid}) is still there: state ${stat.state}, parent ${stat.ppid}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Kills a process these tests started if it is still that process; for cleanup after a failure. */
function killIfAlive(pid: number, start: string): void {
  const stat = procStat(pid);
  if (stat === undefined || stat.start !== start || stat.state === "Z") return;
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // Gone meanwhile.
  }
}

// Starts two descendants that a kill of the command's process group alone would not end: one in
// a session (and group) of its own with setsid, one orphaned by a double fork. Each reports
// "NAME PID PGRP STARTTIME"; "ready" follows once both have (the FIFO makes the command wait for
// the setsid one), and all of them keep stdout open. Needs a writable cwd for the FIFO.
const TREE = [
  "mkfifo gc.fifo",
  `setsid sh -c 'echo "setsid $$ $(cut -d " " -f5,22 /proc/$$/stat)" > gc.fifo; exec sleep 60' &`,
  "cat gc.fifo",
  `(sleep 60 & echo "double $! $(cut -d " " -f5,22 /proc/$!/stat)")`,
  `echo "outer $$ $(cut -d " " -f5,22 /proc/$$/stat)"`,
  "echo ready",
  "wait",
].join("\n");

interface TreeMember {
  pid: number;
  pgrp: number;
  start: string;
}

function parseTree(stdout: string): Record<"setsid" | "double" | "outer", TreeMember> {
  const found: Partial<Record<string, TreeMember>> = {};
  for (const [, name, pid, pgrp, start] of stdout.matchAll(/^(\w+) (\d+) (\d+) (\d+)$/gm)) {
    found[name] = { pid: Number(pid), pgrp: Number(pgrp), start };
  }
  const { setsid, double, outer } = found;
  assert.ok(setsid && double && outer, `The tree did not report itself: ${JSON.stringify(stdout)}`);
  return { setsid, double, outer };
}

/** The positive control for "escapes the group": a process-group kill would miss the setsid one. */
function assertTreeEscapesTheGroup(tree: ReturnType<typeof parseTree>): void {
  assert.equal(tree.outer.pgrp, tree.outer.pid, "the command leads its own process group");
  assert.equal(tree.setsid.pgrp, tree.setsid.pid, "setsid made a group of its own");
  assert.notEqual(tree.setsid.pgrp, tree.outer.pgrp, "the setsid grandchild left the group");
}

async function assertTreeGone(tree: ReturnType<typeof parseTree>): Promise<void> {
  await Promise.all([
    assertGone(tree.setsid.pid, tree.setsid.start, "the setsid grandchild"),
    assertGone(tree.double.pid, tree.double.start, "the double-forked grandchild"),
    assertGone(tree.outer.pid, tree.outer.start, "the command"),
  ]);
}

function cleanUpTree(stdout: string): void {
  for (const [, , pid, , start] of stdout.matchAll(/^(\w+) (\d+) (\d+) (\d+)$/gm)) {
    killIfAlive(Number(pid), start);
  }
}

/** The kill cgroups the product made for the process with this pid (named after it). */
function killCgroupsOf(pid: number): string[] {
  const dir = ownCgroupDir();
  if (dir === undefined) return [];
  return [...Deno.readDirSync(dir)]
    .filter((entry) => entry.isDirectory && entry.name.startsWith(`llmx-sandbox-${pid}-`))
    .map((entry) => `${dir}/${entry.name}`);
}

// ---------------------------------------------------------------------------------------------
// execSandboxed: results

Deno.test("execSandboxed() denies a write outside the writable roots and flags it as denied", async () => {
  await withTempDir(async (dir) => {
    const control = await run("sh", ["-c", "echo hi > control"], { cwd: dir });
    assert.equal(control.code, 0, "positive control: the write works without the sandbox");
    assert.equal(Deno.readTextFileSync(`${dir}/control`), "hi\n");

    const result = await execSandboxed(
      { command: ["sh", "-c", "echo hi > denied"], cwd: dir },
      READ_ONLY,
    );
    assert.notEqual(result.exitCode, 0);
    assert.equal(result.sandboxDenied, true);
    assert.match(result.stderr, /Permission denied/);
    assert.equal(exists(`${dir}/denied`), false);
  });
});

Deno.test("execSandboxed() allows a write in the cwd with disk-write-cwd", async () => {
  await withTempDir(async (dir) => {
    const result = await execSandboxed(
      { command: ["sh", "-c", "echo hi > allowed && cat allowed"], cwd: dir },
      WRITE_CWD,
    );
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdout, "hi\n");
    assert.equal(result.sandboxDenied, false);
    assert.equal(Deno.readTextFileSync(`${dir}/allowed`), "hi\n");
  });
});

Deno.test("execSandboxed() returns stdout and stderr as strings and as bytes", async () => {
  const result = await execSandboxed(
    { command: ["sh", "-c", "printf 'out \\303\\251'; printf 'err\\n' >&2"], cwd: "/" },
    READ_ONLY,
  );
  assert.equal(result.exitCode, 0, result.stderr);
  assert.equal(result.stdout, "out é");
  assert.equal(result.stderr, "err\n");
  assert.deepEqual(result.stdoutBytes, new Uint8Array([0x6f, 0x75, 0x74, 0x20, 0xc3, 0xa9]));
  assert.deepEqual(result.stderrBytes, new TextEncoder().encode("err\n"));
  assert.equal(result.truncated, false);
  assert.equal(result.signal, null);
  assert.equal(result.timedOut, false);
  assert.equal(result.aborted, false);
  assert.ok(result.durationMs > 0);
});

Deno.test("execSandboxed() returns a command's own exit code 125 as a normal result", async () => {
  const result = await execSandboxed(
    { command: ["sh", "-c", "echo before; exit 125"], cwd: "/" },
    READ_ONLY,
  );
  assert.equal(result.exitCode, 125);
  assert.equal(result.stdout, "before\n");
  assert.equal(result.sandboxDenied, false);
  assert.equal(result.signal, null);
});

Deno.test("execSandboxed() gives stdin to the command", async (t) => {
  await t.step("as a string", async () => {
    const result = await execSandboxed({ command: ["cat"], cwd: "/", stdin: "héllo\n" }, READ_ONLY);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdout, "héllo\n");
  });
  await t.step("as bytes, also ones that are not UTF-8, larger than a pipe's buffer", async () => {
    const input = new Uint8Array(256 * 1024).map((_, i) => (i * 7 + 255) % 256);
    const result = await execSandboxed({ command: ["cat"], cwd: "/", stdin: input }, READ_ONLY);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.deepEqual(result.stdoutBytes, input);
  });
  await t.step("a command that never reads it still ends normally", async () => {
    const input = new Uint8Array(1024 * 1024);
    const result = await execSandboxed({ command: ["true"], cwd: "/", stdin: input }, READ_ONLY);
    assert.equal(result.exitCode, 0, result.stderr);
  });
});

Deno.test("execSandboxed() without stdin: the command reads end of file at once", async () => {
  // If stdin were an open pipe nobody writes, cat would wait until the timeout.
  const result = await execSandboxed({ command: ["cat"], cwd: "/", timeoutMs: 10_000 }, READ_ONLY);
  assert.equal(result.timedOut, false);
  assert.equal(result.exitCode, 0, result.stderr);
  assert.equal(result.stdout, "");
  assert.ok(result.durationMs < 10_000);
});

// ---------------------------------------------------------------------------------------------
// execSandboxed: output limits

Deno.test("execSandboxed() keeps maxOutputBytes per stream and drains the rest", async (t) => {
  await t.step("3 MiB on stdout, limit 1024: drained to the end, cut at 1024", async () => {
    const result = await execSandboxed({
      command: ["sh", "-c", "head -c 3145728 /dev/zero && echo done >&2"],
      cwd: "/",
      maxOutputBytes: 1024,
    }, READ_ONLY);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stderr, "done\n", "the command wrote it all and went on");
    assert.equal(result.stdoutBytes.length, 1024);
    assert.equal(result.stdout.length, 1024);
    assert.equal(result.truncated, true);
  });
  await t.step("the default is DEFAULT_MAX_OUTPUT_BYTES (1 MiB)", async () => {
    assert.equal(DEFAULT_MAX_OUTPUT_BYTES, 1024 * 1024);
    const result = await execSandboxed(
      { command: ["head", "-c", String(DEFAULT_MAX_OUTPUT_BYTES + 4096), "/dev/zero"], cwd: "/" },
      READ_ONLY,
    );
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdoutBytes.length, DEFAULT_MAX_OUTPUT_BYTES);
    assert.equal(result.truncated, true);
  });
  await t.step("output of exactly the limit is whole, not truncated", async () => {
    const result = await execSandboxed(
      { command: ["head", "-c", "1024", "/dev/zero"], cwd: "/", maxOutputBytes: 1024 },
      READ_ONLY,
    );
    assert.equal(result.stdoutBytes.length, 1024);
    assert.equal(result.truncated, false);
  });
  await t.step("stderr has a limit of its own", async () => {
    const result = await execSandboxed({
      command: ["sh", "-c", "head -c 100 /dev/zero; head -c 300000 /dev/zero >&2"],
      cwd: "/",
      maxOutputBytes: 1024,
    }, READ_ONLY);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdoutBytes.length, 100, "stdout is not charged for stderr");
    assert.equal(result.stderrBytes.length, 1024);
    assert.equal(result.truncated, true);
  });
  await t.step("both streams past the limit are each cut at it", async () => {
    const result = await execSandboxed({
      command: ["sh", "-c", "head -c 5000 /dev/zero; head -c 5000 /dev/zero >&2"],
      cwd: "/",
      maxOutputBytes: 1024,
    }, READ_ONLY);
    assert.equal(result.stdoutBytes.length, 1024);
    assert.equal(result.stderrBytes.length, 1024);
  });
});

// ---------------------------------------------------------------------------------------------
// Timeout, abort, and what the command leaves behind

Deno.test({
  name: skipReason(
    "execSandboxed() timeout kills the whole tree, also descendants that left the process group, and returns promptly",
    NO_KILL_CGROUP,
  ),
  ignore: NO_KILL_CGROUP !== undefined,
}, async () => {
  await withTempDir(async (dir) => {
    let stdout = "";
    try {
      const started = performance.now();
      const result = await execSandboxed(
        { command: ["sh", "-c", TREE], cwd: dir, timeoutMs: 500 },
        WRITE_CWD,
      );
      const elapsed = performance.now() - started;
      stdout = result.stdout;
      assert.match(stdout, /^ready$/m, `The tree was not set up within 500 ms: ${result.stderr}`);
      const tree = parseTree(stdout);
      assertTreeEscapesTheGroup(tree);
      assert.equal(result.timedOut, true);
      assert.equal(result.exitCode, 124);
      assert.equal(result.signal, "SIGKILL");
      assert.equal(result.aborted, false);
      assert.equal(result.sandboxDenied, false);
      // The grandchildren hold stdout: had one survived, the call would wait for it (60 s).
      assert.ok(elapsed >= 450, `returned after ${elapsed} ms, before the timeout`);
      assert.ok(elapsed < 10_000, `returned after ${elapsed} ms`);
      await assertTreeGone(tree);
    } finally {
      cleanUpTree(stdout);
    }
  });
});

Deno.test({
  name: skipReason(
    "spawnSandboxed() abort kills the whole tree, also descendants that left the process group",
    NO_KILL_CGROUP,
  ),
  ignore: NO_KILL_CGROUP !== undefined,
}, async () => {
  await withTempDir(async (dir) => {
    const controller = new AbortController();
    const child = spawnSandboxed(
      // The timeout only bounds a broken abort: then this fails after 20 s, not 60.
      { command: ["sh", "-c", TREE], cwd: dir, signal: controller.signal, timeoutMs: 20_000 },
      WRITE_CWD,
    );
    const out = textReader(child.stdout!);
    const err = new Response(child.stderr).text();
    try {
      await out.until(/^ready$/m);
      const tree = parseTree(out.text);
      assertTreeEscapesTheGroup(tree);
      assert.equal(tree.outer.pid, child.pid, "pid is the command's");
      for (const member of [tree.setsid, tree.double, tree.outer]) {
        assert.notEqual(procStat(member.pid)?.state ?? "Z", "Z", "alive before the abort");
      }
      controller.abort();
      const status = await child.status;
      assert.equal(status.aborted, true);
      assert.equal(status.timedOut, false);
      assert.equal(status.signal, "SIGKILL");
      assert.equal(status.exitCode, 137);
      // End of file: no process holds the pipe any more.
      await out.rest();
      await err;
      await assertTreeGone(tree);
    } finally {
      child.kill("SIGKILL");
      await Promise.allSettled([out.rest(), err, child.status]);
      cleanUpTree(out.text);
    }
  });
});

Deno.test("execSandboxed() abort while the command runs kills it and returns aborted", async () => {
  await withTempDir(async (dir) => {
    const fifo = `${dir}/running.fifo`;
    assert.equal((await run("mkfifo", [fifo])).code, 0);
    const controller = new AbortController();
    const running = execSandboxed({
      command: ["sh", "-c", `echo "running $$" > running.fifo; exec sleep 60`],
      cwd: dir,
      signal: controller.signal,
      timeoutMs: 20_000,
    }, WRITE_CWD);
    // The read returns once the command has opened, written and closed the FIFO; should the
    // command end without opening it, open it ourselves so that the read does not hang.
    const ready = Deno.readTextFile(fifo);
    const first = await Promise.race([ready, running.then(() => undefined)]);
    if (first === undefined) {
      await Deno.writeTextFile(fifo, "");
      await ready;
      assert.fail(`The command ended before it ran: ${JSON.stringify(await running)}`);
    }
    const pid = Number(first.match(/^running (\d+)$/m)?.[1]);
    const stat = procStat(pid);
    assert.ok(stat && stat.state !== "Z", "alive before the abort");
    controller.abort();
    const result = await running;
    assert.equal(result.aborted, true);
    assert.equal(result.signal, "SIGKILL");
    assert.equal(result.exitCode, 137);
    assert.equal(result.sandboxDenied, false);
    assert.equal(procStat(pid), undefined, "the command was reaped");
  });
});

Deno.test("an already aborted signal rejects before anything runs", async (t) => {
  await withTempDir(async (dir) => {
    const command = ["sh", "-c", "touch marker"];
    const control = await execSandboxed({ command, cwd: dir }, WRITE_CWD);
    assert.equal(control.exitCode, 0, "positive control: the marker command creates the marker");
    assert.equal(exists(`${dir}/marker`), true);
    Deno.removeSync(`${dir}/marker`);

    const reason = new Error("Cancelled by the test");
    await t.step("execSandboxed() rejects with the signal's reason", async () => {
      await assert.rejects(
        execSandboxed({ command, cwd: dir, signal: AbortSignal.abort(reason) }, WRITE_CWD),
        (error) => error === reason,
      );
      assert.equal(exists(`${dir}/marker`), false);
    });
    await t.step("spawnSandboxed() throws the signal's reason", () => {
      assert.throws(
        () => spawnSandboxed({ command, cwd: dir, signal: AbortSignal.abort(reason) }, WRITE_CWD),
        (error) => error === reason,
      );
      assert.equal(exists(`${dir}/marker`), false);
    });
  });
});

Deno.test({
  name: skipReason(
    "execSandboxed() kills a background process the command left behind when it ends normally",
    NO_KILL_CGROUP,
  ),
  ignore: NO_KILL_CGROUP !== undefined,
}, async () => {
  await withTempDir(async (dir) => {
    // setsid and no stdio: neither the process group nor an open pipe ties it to the command.
    const script = "setsid sleep 60 </dev/null >/dev/null 2>&1 & echo $! > pid";

    const control = await run("sh", ["-c", script], { cwd: dir });
    assert.equal(control.code, 0);
    const controlPid = Number(Deno.readTextFileSync(`${dir}/pid`));
    const controlStat = procStat(controlPid);
    try {
      assert.ok(
        controlStat && controlStat.state !== "Z",
        "positive control: without the sandbox the leftover outlives the command",
      );
    } finally {
      if (controlStat) killIfAlive(controlPid, controlStat.start);
    }

    Deno.removeSync(`${dir}/pid`);
    const result = await execSandboxed(
      { command: ["sh", "-c", `${script}; cut -d " " -f22 /proc/$(cat pid)/stat`], cwd: dir },
      WRITE_CWD,
    );
    const pid = Number(Deno.readTextFileSync(`${dir}/pid`));
    const start = result.stdout.trim();
    try {
      assert.equal(result.exitCode, 0, result.stderr);
      assert.equal(result.timedOut, false);
      assert.match(start, /^\d+$/);
      await assertGone(pid, start, "the leftover background process");
    } finally {
      killIfAlive(pid, start);
    }
  });
});

Deno.test("the command dies when its supervising process is killed (PR_SET_PDEATHSIG)", async (t) => {
  await withTempDir(async (dir) => {
    // A separate program supervises the command, which shares its stdout: our pipe reaches end
    // of file only when both are gone.
    const script = `${dir}/supervisor.ts`;
    Deno.writeTextFileSync(
      script,
      `import { prepareSandbox, spawnPlan } from ${JSON.stringify(MOD_URL)};
const command = ["sh", "-c", 'echo "command $$ $(cut -d " " -f22 /proc/$$/stat)"; exec sleep 60'];
if (Deno.args[0] === "sandboxed") {
  const plan = prepareSandbox({ command, cwd: "/" }, ["disk-full-read-access"]);
  spawnPlan(plan, { stdout: "inherit", stderr: "inherit" });
} else {
  new Deno.Command(command[0], { args: command.slice(1), stdout: "inherit", stderr: "inherit" })
    .spawn();
}
console.log("supervisor", Deno.pid);
`,
    );

    const supervise = async (mode: "plain" | "sandboxed") => {
      const supervisor = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "--quiet", "--no-config", script, mode],
        cwd: dir,
        // Its own temporary folder (the plan's) is left behind when it is killed: keep it here.
        env: { TMPDIR: dir },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const out = textReader(supervisor.stdout);
      const err = new Response(supervisor.stderr).text();
      const [, pid, start] = await out.until(/^command (\d+) (\d+)$/m);
      await out.until(/^supervisor \d+$/m);
      const command = { pid: Number(pid), start };
      assert.equal(procStat(command.pid)?.ppid, supervisor.pid, "the supervisor is its parent");
      supervisor.kill("SIGKILL");
      assert.equal((await supervisor.status).signal, "SIGKILL");
      return { supervisor, out, err, command };
    };

    await t.step("positive control: a plain child outlives its killed parent", async () => {
      const { out, err, command } = await supervise("plain");
      try {
        const stat = procStat(command.pid);
        assert.ok(stat && stat.state !== "Z", "alive after its parent died");
        assert.notEqual(stat.ppid, Number(out.text.match(/^supervisor (\d+)$/m)?.[1]));
      } finally {
        killIfAlive(command.pid, command.start);
        await Promise.all([out.rest(), err]);
      }
    });

    await t.step("the sandboxed command dies with its supervisor", async () => {
      const { supervisor, out, err, command } = await supervise("sandboxed");
      let waitedTooLong = false;
      const timer = setTimeout(() => {
        waitedTooLong = true;
        killIfAlive(command.pid, command.start);
      }, 10_000);
      try {
        await Promise.all([out.rest(), err]);
        assert.equal(waitedTooLong, false, "the command outlived its supervisor by 10 s");
        await assertGone(command.pid, command.start, "the sandboxed command");
      } finally {
        clearTimeout(timer);
        killIfAlive(command.pid, command.start);
        // A SIGKILL leaves the supervisor no chance to remove its kill cgroup.
        for (const cgroup of killCgroupsOf(supervisor.pid)) Deno.removeSync(cgroup);
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Resources

Deno.test("execSandboxed() leaks no file descriptors, child processes, temporary folders or cgroups", async () => {
  const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
  const children = () => {
    let count = 0;
    for (const task of Deno.readDirSync("/proc/self/task")) {
      const list = Deno.readTextFileSync(`/proc/self/task/${task.name}/children`);
      count += list.split(" ").filter(Boolean).length;
    }
    return count;
  };
  // The plan's temporary folders go to $TMPDIR: a private one, to count only ours.
  const tmp = tempDir();
  const savedTmpdir = Deno.env.get("TMPDIR");
  Deno.env.set("TMPDIR", tmp);
  try {
    const warmUp = await execSandboxed({ command: ["true"], cwd: "/" }, READ_ONLY);
    assert.equal(warmUp.exitCode, 0, warmUp.stderr);
    assert.equal(
      [...Deno.readDirSync(tmp)].length,
      0,
      "positive control: the plan's folder went to this $TMPDIR and was removed",
    );
    const before = { fds: fds(), children: children() };
    for (let i = 0; i < 200; i++) {
      const result = await execSandboxed({ command: ["true"], cwd: "/" }, READ_ONLY);
      assert.equal(result.exitCode, 0, result.stderr);
    }
    const after = { fds: fds(), children: children() };
    assert.ok(after.fds <= before.fds, `fds: ${before.fds} before, ${after.fds} after`);
    assert.ok(
      after.children <= before.children,
      `children: ${before.children} before, ${after.children} after`,
    );
    assert.deepEqual([...Deno.readDirSync(tmp)].map((entry) => entry.name), []);
    assert.deepEqual(killCgroupsOf(Deno.pid), []);
  } finally {
    if (savedTmpdir === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", savedTmpdir);
    Deno.removeSync(tmp, { recursive: true });
  }
});

Deno.test("execSandboxed() keeps concurrent calls' output apart", async () => {
  const tokens = Array.from({ length: 50 }, (_, i) => `token-${i}-${crypto.randomUUID()}`);
  const results = await Promise.all(
    tokens.map((token) =>
      execSandboxed({ command: ["sh", "-c", `printf %s "$1"`, "sh", token], cwd: "/" }, READ_ONLY)
    ),
  );
  results.forEach((result: ExecResult, i) => {
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stdout, tokens[i]);
    assert.equal(result.stderr, "");
  });
});

// ---------------------------------------------------------------------------------------------
// spawnSandboxed

Deno.test("spawnSandboxed() streams", async (t) => {
  await t.step("stdout arrives as it is written, and piped stdin is writable", async () => {
    const child = spawnSandboxed(
      { command: ["sh", "-c", `echo one; read line; echo "two $line"`], cwd: "/", stdin: "piped" },
      READ_ONLY,
    );
    const out = textReader(child.stdout!);
    const err = new Response(child.stderr).text();
    const writer = child.stdin!.getWriter();
    try {
      // The command waits for our line: "one" can only come from a stream, not from the end.
      await out.until(/^one\n$/);
      await writer.write(new TextEncoder().encode("three\n"));
      await writer.close();
      assert.equal(await out.rest(), "one\ntwo three\n");
      assert.equal(await err, "");
      const status = await child.status;
      assert.equal(status.exitCode, 0);
      assert.equal(status.signal, null);
    } finally {
      child.kill("SIGKILL");
      await writer.abort().catch(() => {});
      await Promise.allSettled([out.rest(), err, child.status]);
    }
  });

  await t.step(
    'without stdin: "piped", stdin is null and the command reads end of file',
    async () => {
      const child = spawnSandboxed({ command: ["cat"], cwd: "/", timeoutMs: 10_000 }, READ_ONLY);
      assert.equal(child.stdin, null);
      const [out, err] = await Promise.all([
        new Response(child.stdout).text(),
        new Response(child.stderr).text(),
      ]);
      assert.equal(out, "");
      assert.equal(err, "");
      const status = await child.status;
      assert.equal(status.timedOut, false);
      assert.equal(status.exitCode, 0);
    },
  );

  await t.step('kill("SIGTERM") ends the command with SIGTERM and exit code 143', async () => {
    const child = spawnSandboxed(
      { command: ["sh", "-c", "echo $$; exec sleep 60"], cwd: "/" },
      READ_ONLY,
    );
    const out = textReader(child.stdout!);
    const err = new Response(child.stderr).text();
    try {
      assert.equal(typeof child.pid, "number");
      const [, pid] = await out.until(/^(\d+)\n/);
      assert.equal(Number(pid), child.pid, "pid is the command's");
      child.kill("SIGTERM");
      const status = await child.status;
      assert.equal(status.signal, "SIGTERM");
      assert.equal(status.exitCode, 143);
      assert.equal(status.timedOut, false);
      assert.equal(status.aborted, false);
    } finally {
      child.kill("SIGKILL");
      await Promise.allSettled([out.rest(), err, child.status]);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Errors: nothing runs

Deno.test("a command that cannot run as asked throws a SandboxError and runs nothing", async (t) => {
  await withTempDir(async (dir) => {
    const marker = `${dir}/marker`;
    const base = {
      command: ["sh", "-c", `touch ${marker}`],
      cwd: dir,
      env: { PATH: "/usr/local/bin:/usr/bin:/bin" },
    };
    const control = await execSandboxed(base, WRITE_CWD);
    assert.equal(control.exitCode, 0, "positive control: the marker command creates the marker");
    assert.equal(exists(marker), true);
    Deno.removeSync(marker);

    const cases: [string, Record<string, unknown>, PolicyInput, SandboxErrorKind][] = [
      ["an unknown permission", {}, [...WRITE_CWD, "disk-write-everything"], "invalid-policy"],
      [
        "a writable folder that does not exist",
        {},
        [...WRITE_CWD, { "disk-write-folder": { folder: `${dir}/nonexistent-folder` } }],
        "missing-path",
      ],
      ["a cwd that does not exist", { cwd: `${dir}/nonexistent-cwd` }, WRITE_CWD, "missing-path"],
      ["an empty command", { command: [] }, WRITE_CWD, "invalid-command"],
      [
        "a NUL in an argument",
        { command: ["sh", "-c", `touch ${marker}\0ignored`] },
        WRITE_CWD,
        "invalid-command",
      ],
      ["a command that is not strings", { command: ["sh", 1] }, WRITE_CWD, "invalid-command"],
      [
        'an environment name with "="',
        { env: { ...base.env, "A=B": "1" } },
        WRITE_CWD,
        "invalid-command",
      ],
      [
        "a NUL in an environment value",
        { env: { ...base.env, A: "x\0y" } },
        WRITE_CWD,
        "invalid-command",
      ],
      [
        "a writable folder /",
        {},
        [...WRITE_CWD, { "disk-write-folder": { folder: "/" } }],
        "invalid-policy",
      ],
      ["disk-write-cwd with cwd /", { cwd: "/" }, WRITE_CWD, "invalid-policy"],
      ["a timeoutMs of 0", { timeoutMs: 0 }, WRITE_CWD, "invalid-command"],
      ["a timeoutMs that is not a number", { timeoutMs: NaN }, WRITE_CWD, "invalid-command"],
      [
        "a SandboxPolicy with a missing writable folder",
        {},
        SandboxPolicy.readOnlyWithWritableRoots([`${dir}/nonexistent-folder`]),
        "missing-path",
      ],
    ];
    for (const [what, change, policy, kind] of cases) {
      await t.step(`${what}: ${kind}`, async () => {
        const params = { ...base, ...change } as typeof base;
        const isKind = (error: unknown) => {
          assert.ok(error instanceof SandboxError, String(error));
          assert.equal(error.kind, kind, error.message);
          return true;
        };
        await assert.rejects(execSandboxed(params, policy), isKind);
        assert.throws(() => spawnSandboxed(params, policy), isKind);
        assert.equal(exists(marker), false);
      });
    }
    await t.step("a maxOutputBytes below 0: invalid-command", async () => {
      await assert.rejects(
        execSandboxed({ ...base, maxOutputBytes: -1 }, WRITE_CWD),
        (error) => error instanceof SandboxError && error.kind === "invalid-command",
      );
      assert.equal(exists(marker), false);
    });
  });
});

Deno.test("execSandboxed() takes a SandboxPolicy the same as a list of permissions", async (t) => {
  await withTempDir(async (dir) => {
    const command = ["sh", "-c", "echo hi > file"];
    const cases: [string, PolicyInput, PolicyInput, boolean][] = [
      ["read only", READ_ONLY, SandboxPolicy.readOnly(), false],
      [
        "cwd writable",
        WRITE_CWD,
        new SandboxPolicy(["disk-full-read-access", "disk-write-cwd"]),
        true,
      ],
      [
        "folder writable",
        [...READ_ONLY, { "disk-write-folder": { folder: dir } }],
        SandboxPolicy.readOnlyWithWritableRoots([dir]),
        true,
      ],
    ];
    for (const [what, list, instance, writes] of cases) {
      await t.step(what, async () => {
        for (const policy of [list, instance]) {
          if (exists(`${dir}/file`)) Deno.removeSync(`${dir}/file`);
          const result = await execSandboxed({ command, cwd: dir }, policy);
          assert.equal(result.exitCode === 0, writes, result.stderr);
          assert.equal(result.sandboxDenied, !writes);
          assert.equal(exists(`${dir}/file`), writes);
        }
      });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Known bugs: each test shows the defect and passes once it is fixed.

Deno.test({
  name: "execSandboxed() refuses a timeoutMs above 2^31-1 ms instead of timing out at once",
  async fn() {
    const command = ["sh", "-c", "echo ran"];
    const control = await execSandboxed({ command, cwd: "/", timeoutMs: 2 ** 31 - 1 }, READ_ONLY);
    assert.equal(control.timedOut, false, "positive control: the largest timer delay is honoured");
    assert.equal(control.stdout, "ran\n");

    // 2^31 ms is about 25 days: either refuse it before running or honour it; never kill at once.
    let result: ExecResult;
    try {
      result = await execSandboxed({ command, cwd: "/", timeoutMs: 2 ** 31 }, READ_ONLY);
    } catch (error) {
      assert.ok(error instanceof SandboxError && error.kind === "invalid-command", String(error));
      return;
    }
    assert.equal(result.timedOut, false);
    assert.equal(result.exitCode, 0);
    assert.equal(result.stdout, "ran\n");
  },
});

Deno.test({
  name: "spawnSandboxed().kill() before the command has started ends status with that signal",
  async fn() {
    const child = spawnSandboxed({ command: ["sleep", "60"], cwd: "/" }, READ_ONLY);
    // At once: the supervised child is still starting, long before it execs the command.
    child.kill("SIGTERM");
    await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
    const status = await child.status;
    assert.equal(status.signal, "SIGTERM");
    assert.equal(status.exitCode, 143);
  },
});

Deno.test({
  name:
    "execSandboxed() timeout returns even when a descendant moved itself out of the kill cgroup",
  async fn() {
    const ownCgroup = ownCgroupDir();
    assert.ok(ownCgroup, "needs cgroup v2");
    await withTempDir(async (dir) => {
      // With disk-full-write-access a command may write cgroup.procs: here the grandchild goes
      // back to this test's own cgroup, outside the one the supervisor kills, and keeps stdout.
      const script = `setsid sh -c 'echo $$ > ${ownCgroup}/cgroup.procs; ` +
        `echo "$$ $(cut -d " " -f22 /proc/$$/stat)" > gc; exec sleep 60' & wait`;
      let escapee: { pid: number; start: string } | undefined;
      const readEscapee = () => {
        const [pid, start] = Deno.readTextFileSync(`${dir}/gc`).trim().split(" ");
        return { pid: Number(pid), start };
      };
      let waitedTooLong = false;
      const guard = setTimeout(() => {
        waitedTooLong = true;
        escapee = readEscapee();
        killIfAlive(escapee.pid, escapee.start);
      }, 10_000);
      try {
        const result = await execSandboxed(
          { command: ["sh", "-c", script], cwd: dir, timeoutMs: 500 },
          // The network too: as root, full write without it is refused.
          ["disk-full-read-access", "disk-full-write-access", "network-full-access"],
        );
        escapee ??= readEscapee();
        assert.equal(waitedTooLong, false, "returned only once the test killed the escapee");
        assert.equal(result.timedOut, true);
      } finally {
        clearTimeout(guard);
        escapee ??= readEscapee();
        killIfAlive(escapee.pid, escapee.start);
      }
    });
  },
});

Deno.test({
  name: skipReason(
    "the timeout kills setsid descendants when two copies of the library run in one process",
    NO_KILL_CGROUP,
  ),
  ignore: NO_KILL_CGROUP !== undefined,
  async fn() {
    assert.ok(ownCgroupDir(), "needs cgroup v2");
    await withTempDir(async (dir) => {
      // Workers have module graphs of their own, as do `deno test --parallel` files: two copies
      // of the library in one process, whose counters both start at 1.
      const source = `${dir}/worker.ts`;
      Deno.writeTextFileSync(
        source,
        `import { execSandboxed, spawnSandboxed } from ${JSON.stringify(MOD_URL)};
const self_ = self as unknown as Worker;
self_.onmessage = async ({ data }) => {
  if (data.role === "hold") {
    const child = spawnSandboxed({ command: ["sh", "-c", "echo ready; exec sleep 60"], cwd: "/" },
      ["disk-full-read-access"]);
    const reader = child.stdout!.getReader();
    await reader.read();
    self_.onmessage = async () => {
      child.kill("SIGKILL");
      while (!(await reader.read()).done) { /* drain */ }
      await child.stderr!.cancel();
      await child.status;
      self_.postMessage("released");
    };
    self_.postMessage("holding");
  } else {
    const result = await execSandboxed(
      { command: ["sh", "-c", data.script], cwd: data.cwd, timeoutMs: 1000 },
      ["disk-full-read-access", "disk-write-cwd"],
    );
    self_.postMessage(result.stdout);
  }
};
`,
      );
      const next = (worker: Worker) =>
        new Promise<string>((resolve) => worker.onmessage = ({ data }) => resolve(data));
      const holder = new Worker(new URL(`file://${source}`), { type: "module" });
      const runner = new Worker(new URL(`file://${source}`), { type: "module" });
      let stdout = "";
      let holding = false;
      try {
        let reply = next(holder);
        holder.postMessage({ role: "hold" });
        assert.equal(await reply, "holding");
        holding = true;
        assert.equal(
          killCgroupsOf(Deno.pid).length,
          1,
          "positive control: the first copy's command is in a kill cgroup",
        );
        reply = next(runner);
        runner.postMessage({ role: "tree", script: TREE, cwd: dir });
        stdout = await reply;
        const tree = parseTree(stdout);
        assertTreeEscapesTheGroup(tree);
        await assertTreeGone(tree);
      } finally {
        cleanUpTree(stdout);
        // Let the holder end its command and remove its cgroup before its thread goes.
        if (holding) {
          const released = next(holder);
          holder.postMessage("release");
          await released;
        }
        holder.terminate();
        runner.terminate();
      }
    });
  },
});
