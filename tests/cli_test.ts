// End to end: the CLI contract (options, exit codes, messages) that tests and tools rely on.

import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import {
  MODES,
  NOT_ROOT,
  RESTRICTED_STDERR,
  run,
  runCli,
  skipReason,
  tempDir,
} from "./_helpers.ts";
import { SandboxPolicy } from "../policy/sandbox_policy.ts";
import { planSandbox } from "../policy/plan.ts";
import { probeKernel } from "../exec/kernel.ts";
import { spawnPlan } from "../exec/spawn.ts";
import type { SandboxPlan } from "../policy/plan.ts";

const runPlan = (plan: SandboxPlan) => spawnPlan(plan, { stdout: "null", stderr: "null" }).status;
import { SandboxError } from "../exec/errors.ts";

Deno.test("a wrong invocation exits 2 with one line naming the value, and runs nothing", async (t) => {
  const dir = tempDir();
  const marker = `${dir}/marker`;
  const touch = ["--", "touch", marker];
  const write = ["-s", `disk-write-folder=${dir}`];
  const cases: [string, string[], RegExp][] = [
    ["unknown option", ["--frobnicate", ...touch], /--frobnicate/],
    ["unknown short option", ["-x", ...touch], /-x/],
    ["unknown permission", ["-s", "disk-write-everything", ...touch], /disk-write-everything/],
    ["permission without its folder", ["-s", "disk-write-folder=", ...touch], /disk-write-folder/],
    ["missing writable folder", ["-s", `disk-write-folder=${dir}/nope`, ...touch], /nope/],
    ["writable root that is /", ["-s", "disk-write-folder=/", ...touch], /disk-full-write-access/],
    ["bad timeout", ["--timeout", "soon", ...write, ...touch], /soon/],
    ["zero timeout", ["--timeout", "0", ...write, ...touch], /"0"/],
    ["missing option value", [...write, "--timeout"], /--timeout/],
    ["missing cwd", ["--cwd", `${dir}/gone`, ...write, ...touch], /gone/],
    ["no command", [...write], /No command/],
    ["unknown --run-as user", ["--run-as", "no-such-user-llmx", ...touch], /no-such-user-llmx/],
    ["--run-as uid without a group", ["--run-as", "4000000000", ...touch], /4000000000/],
    ["empty --run-as", ["--run-as=", ...write, ...touch], /--run-as/],
  ];
  try {
    // Positive control: the marker command does create the marker.
    const ok = await runCli([...write, ...touch]);
    assert.equal(ok.code, 0, ok.stderr);
    Deno.removeSync(marker);
    for (const [name, args, names] of cases) {
      await t.step(name, async () => {
        const out = await runCli(args);
        assert.equal(out.code, 2, out.stderr);
        assert.match(out.stderr, names);
        assert.equal(out.stderr.trimEnd().split("\n").length, 1, out.stderr);
        assert.equal(out.stdout, "");
        assert.throws(() => Deno.statSync(marker), Deno.errors.NotFound);
      });
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("--help shows usage with examples and --version the package version", async () => {
  for (const flag of ["-h", "--help"]) {
    const out = await runCli([flag]);
    assert.equal(out.code, 0);
    assert.match(out.stdout, /Usage: llmx-sandbox/);
    assert.match(out.stdout, /Examples:/);
  }
  for (const flag of ["-V", "--version"]) {
    const out = await runCli([flag]);
    assert.equal(out.code, 0);
    assert.equal(out.stdout, `llmx-sandbox ${denoJson.version}\n`);
  }
});

Deno.test("options end at the first argument that is not an option", async () => {
  const out = await runCli(["echo", "-s", "--timeout", "x"]);
  assert.equal(out.code, 0, out.stderr);
  assert.equal(out.stdout, "-s --timeout x\n");
  const dashes = await runCli(["--", "echo", "--", "-V"]);
  assert.equal(dashes.stdout, "-- -V\n");
});

Deno.test("exit codes: the command's own, 128+N for a signal, 126, 127", async (t) => {
  const dir = tempDir();
  try {
    Deno.writeTextFileSync(`${dir}/not-executable`, "echo hi\n", { mode: 0o644 });
    Deno.writeTextFileSync(`${dir}/no-shebang`, "echo from-sh\n", { mode: 0o755 });
    for (const mode of MODES) {
      await t.step(mode.name, async () => {
        assert.equal((await runCli([...mode.flags, "--", "sh", "-c", "exit 7"])).code, 7);
        const own125 = await runCli([...mode.flags, "--", "sh", "-c", "exit 125"]);
        assert.equal(own125.code, 125);
        assert.equal(
          own125.stderr,
          RESTRICTED_STDERR,
          "a command's own 125 is not a sandbox failure",
        );
        const killed = await runCli([...mode.flags, "--", "sh", "-c", "kill -TERM $$"]);
        assert.ok(killed.code === 143 || killed.signal === "SIGTERM", JSON.stringify(killed));
        const missing = await runCli([...mode.flags, "--", "no-such-command-llmx"]);
        assert.equal(missing.code, 127);
        assert.match(missing.stderr, /no-such-command-llmx: command not found/);
        const missingPath = await runCli([...mode.flags, "--", `${dir}/absent`]);
        assert.equal(missingPath.code, 127);
        assert.match(missingPath.stderr, /absent: No such file or directory/);
        const notExec = await runCli([...mode.flags, "--", `${dir}/not-executable`]);
        assert.equal(notExec.code, 126);
        assert.match(notExec.stderr, /not-executable: not executable/);
        const script = await runCli([...mode.flags, "--cwd", dir, "--", "./no-shebang"]);
        assert.equal(script.stdout, "from-sh\n", script.stderr);
      });
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a timeout kills the command and exits 124", async () => {
  const dir = tempDir();
  try {
    const pidFile = `${dir}/pid`;
    const started = Date.now();
    const out = await runCli([
      "-s",
      `disk-write-folder=${dir}`,
      "--timeout",
      "300",
      "--",
      "sh",
      "-c",
      `echo $$ > ${pidFile}; sleep 30 & wait`,
    ]);
    assert.equal(out.code, 124, out.stderr);
    assert.match(out.stderr, /timed out after 300 ms/);
    assert.ok(Date.now() - started < 20_000, "returned long before the command would have");
    const pid = Deno.readTextFileSync(pidFile).trim();
    assert.throws(() => Deno.statSync(`/proc/${pid}`), Deno.errors.NotFound);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the supervisor forwards SIGTERM to the command", async () => {
  const dir = tempDir();
  try {
    const fifo = `${dir}/ready`;
    await run("mkfifo", [fifo]);
    const cli = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        new URL("../main.ts", import.meta.url).pathname,
        "-s",
        `disk-write-folder=${dir}`,
        "--timeout",
        "60000",
        "--",
        "sh",
        "-c",
        `trap 'echo got-term; exit 3' TERM; echo ready > ${fifo}; while :; do sleep 0.1; done`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Opening a FIFO for reading waits for the writer: the command is running.
    const ready = await Deno.readTextFile(fifo);
    assert.equal(ready, "ready\n");
    cli.kill("SIGTERM");
    const out = await cli.output();
    assert.equal(new TextDecoder().decode(out.stdout), "got-term\n");
    assert.equal(out.code, 3);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a sandbox that cannot be applied runs nothing and is told apart from exit 125", async () => {
  const dir = tempDir();
  const root = `${dir}/root`;
  Deno.mkdirSync(root);
  try {
    const plan = planSandbox(
      SandboxPolicy.readOnlyWithWritableRoots([root]),
      { argv: ["touch", `${dir}/marker`], cwd: dir, env: { PATH: "/usr/bin:/bin" } },
      probeKernel(),
    );
    // Positive control: the plan runs as it is.
    assert.equal((await runPlan({ ...plan, argv: ["true"] })).exitCode, 0);
    // The root vanishes between planning and applying: the child must refuse, not run.
    Deno.removeSync(root);
    await assert.rejects(
      () => runPlan(plan),
      (error: unknown) =>
        error instanceof SandboxError && error.kind === "apply-failed" &&
        error.message.includes(root),
    );
    assert.throws(() => Deno.statSync(`${dir}/marker`), Deno.errors.NotFound);
    await assert.rejects(
      () => runPlan({ ...plan, version: 999 }),
      (error: unknown) => error instanceof SandboxError && /version 999/.test(error.message),
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("--json prints one result object with the command's output inside", async (t) => {
  await t.step("output and exit code", async () => {
    const out = await runCli(["--json", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert.equal(out.code, 3);
    assert.equal(out.stderr, RESTRICTED_STDERR);
    assert.equal(out.stdout.trimEnd().split("\n").length, 1);
    const result = JSON.parse(out.stdout);
    assert.equal(result.exitCode, 3);
    assert.equal(result.stdout, "out\n");
    assert.equal(result.stderr, "err\n");
    assert.equal(result.timedOut, false);
    assert.equal(result.sandboxDenied, false);
    assert.equal(typeof result.durationMs, "number");
  });
  await t.step("a denied write is flagged", async () => {
    const dir = tempDir();
    try {
      const out = await runCli(["--json", "--", "sh", "-c", `echo x > ${dir}/f`]);
      const result = JSON.parse(out.stdout);
      assert.notEqual(result.exitCode, 0);
      assert.equal(result.sandboxDenied, true);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  });
  await t.step("stdin only with --stdin", async () => {
    const without = await runCli(["--json", "--", "cat"], { stdin: "hello" });
    assert.equal(JSON.parse(without.stdout).stdout, "");
    const given = await runCli(["--json", "--stdin", "--", "cat"], { stdin: "hello" });
    assert.equal(JSON.parse(given.stdout).stdout, "hello");
    const alone = await runCli(["--stdin", "--", "cat"], { stdin: "hello" });
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /--stdin needs --json/);
  });
  await t.step("an error is a JSON object too, with the exit code of the table", async () => {
    const out = await runCli(["--json", "-s", "disk-write-folder=/nonexistent-llmx", "--", "true"]);
    assert.equal(out.code, 2);
    assert.deepEqual(JSON.parse(out.stdout).error.kind, "missing-path");
    assert.match(out.stderr, /nonexistent-llmx/);
  });
  await t.step("a timeout", async () => {
    const out = await runCli(["--json", "--timeout", "200", "--", "sleep", "30"]);
    assert.equal(out.code, 124);
    assert.equal(JSON.parse(out.stdout).timedOut, true);
  });
});

Deno.test({
  name: skipReason(
    "a restricted policy run as root without --run-as warns once on stderr",
    NOT_ROOT,
  ),
  ignore: NOT_ROOT !== undefined,
}, async (t) => {
  const warning = /^llmx-sandbox: warning: running as root: .*--run-as USER$/;
  for (const mode of MODES) {
    await t.step(mode.name, async () => {
      const restricted = await runCli([...mode.flags, "--", "true"]);
      assert.equal(restricted.code, 0, restricted.stderr);
      assert.equal(restricted.stderr, RESTRICTED_STDERR);
      assert.equal(restricted.stderr.split("\n").filter(Boolean).length, 1);
      assert.match(restricted.stderr.trimEnd(), warning);
      const other = await runCli([...mode.flags, "--cwd", "/", "--run-as", "nobody", "--", "true"]);
      assert.equal(other.code, 0, other.stderr);
      assert.equal(other.stderr, "", "no warning with --run-as");
      const open = await runCli([
        ...mode.flags,
        "-s",
        "disk-full-read-access",
        "-s",
        "disk-full-write-access",
        "-s",
        "network-full-access",
        "-s",
        "network-unix-sockets",
        "--show",
        "/",
        "--",
        "true",
      ]);
      assert.equal(open.stderr, "", "no warning when nothing is restricted");
    });
  }
});

/** The `Uid:`, `Gid:` and `Groups:` lines a process shows in /proc/self/status, as numbers. */
function identityIn(status: string): { uids: number[]; gids: number[]; groups: number[] } {
  const line = (name: string) =>
    (new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1] ?? "").trim().split(/\s+/)
      .filter(Boolean).map(Number);
  return { uids: line("Uid"), gids: line("Gid"), groups: line("Groups") };
}

// A user that some group lists as a member, to see supplementary groups applied, if any.
const MEMBER = Deno.readTextFileSync("/etc/group").split("\n").map((line) => line.split(":"))
  .find((fields) => fields.length >= 4 && fields[3] !== "")?.[3].split(",")[0];

Deno.test({
  name: skipReason("--run-as runs the command with that user's uid, gid and groups", NOT_ROOT),
  ignore: NOT_ROOT !== undefined,
}, async (t) => {
  const { resolveRunAsOnSystem } = await import("../exec/run_as.ts");
  // Positive control: without --run-as, the command is root.
  const direct = identityIn((await runCli(["--", "cat", "/proc/self/status"])).stdout);
  assert.deepEqual(direct.uids, [0, 0, 0, 0]);
  const specs = ["nobody", "12345:12346", ...(MEMBER ? [MEMBER] : [])];
  for (const mode of MODES) {
    for (const spec of specs) {
      await t.step(`${mode.name}: ${spec}`, async () => {
        const expected = resolveRunAsOnSystem(spec);
        const out = await runCli([
          ...mode.flags,
          "--cwd",
          "/",
          "--run-as",
          spec,
          "--",
          "cat",
          "/proc/self/status",
        ]);
        assert.equal(out.code, 0, out.stderr);
        const seen = identityIn(out.stdout);
        // Real, effective, saved and filesystem ids.
        assert.deepEqual(seen.uids, Array(4).fill(expected.uid));
        assert.deepEqual(seen.gids, Array(4).fill(expected.gid));
        assert.deepEqual(seen.groups, expected.groups);
        assert.match(out.stdout, /^CapEff:\s+0+$/m);
        assert.match(out.stdout, /^CapBnd:\s+0+$/m);
      });
    }
  }
});
