// End to end: the five limits through the CLI and the library, on this machine, with the
// mechanism `--probe` names. Each limit is first shown not to bind (the same command succeeds
// under a looser one or none), then to end or refuse the command; every command is bounded (a
// fork loop stops after a fixed number of tries, a spin after a fixed CPU time) and runs under a
// timeout, so that a limit that failed would fail the test, not the machine. Only processes this
// test starts are touched. Root gets cgroups here; an ordinary user gets rlimits, whose weaker
// promise is checked instead (and said so in each test's name).

import assert from "node:assert/strict";
import { NO_KILL_CGROUP, type Output, runCli, skipReason, tempDir, which } from "./_helpers.ts";
import { execSandboxed } from "../exec/sandboxed.ts";
import { probeSystem } from "../exec/probe.ts";
import type { LimitMechanism, LimitName } from "../policy/limits.ts";

const NO_PYTHON = which("python3") ? undefined : "needs python3";
const NO_DD = which("dd") ? undefined : "needs dd";
/** How each limit is enforced here, as `--probe` says. */
const MECHANISM = new Map<LimitName, LimitMechanism | null>(
  probeSystem().limits.map((limit) => [limit.name, limit.mechanism]),
);
const WHOLE_RUN = (name: LimitName) => MECHANISM.get(name)?.startsWith("cgroup") ?? false;
const SUPERVISED = ["--timeout", "60s"];

/** Python that forks up to `tries` children that wait on a pipe, prints how many started. */
const FORK_COUNT = (tries: number) => `
import os, sys
r, w = os.pipe()
started = 0
for _ in range(${tries}):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    started += 1
os.close(w)
for _ in range(started):
    os.wait()
print(started)
`;

/** Python that touches MiB after MiB up to `mib`, then says so. */
const ALLOCATE = (mib: number) => `
chunks = []
for _ in range(${mib}):
    chunks.append(bytearray(1024 * 1024))
print("allocated ${mib}M")
`;

/** Python that spins until it has used `seconds` of CPU time. */
const SPIN = (seconds: number) => `
import time
while time.process_time() < ${seconds}:
    pass
print("spun")
`;

/** Python that opens /dev/null until refused (at most `tries`), prints how many it opened. */
const OPEN_COUNT = (tries: number) => `
import os
opened = []
try:
    for _ in range(${tries}):
        opened.append(os.open("/dev/null", os.O_RDONLY))
except OSError as error:
    print("refused", error.errno)
print(len(opened))
`;

function python(script: string, flags: readonly string[], cwd?: string): Promise<Output> {
  return runCli([...flags, "--", "python3", "-c", script], { cwd });
}

interface JsonStatus {
  exitCode: number;
  stdout: string;
  stderr: string;
  limitExceeded: LimitName | null;
  timedOut: boolean;
}

async function pythonJson(script: string, flags: readonly string[]): Promise<JsonStatus> {
  const out = await python(script, ["--json", ...flags]);
  return JSON.parse(out.stdout) as JsonStatus;
}

Deno.test({
  name: skipReason("--probe names a mechanism for every limit", undefined),
  fn() {
    assert.deepEqual([...MECHANISM.keys()], [
      "memory",
      "processes",
      "cpu",
      "file-size",
      "open-files",
    ]);
    for (const name of ["cpu", "file-size", "open-files"] as const) {
      assert.equal(MECHANISM.get(name), "rlimit", name);
    }
    if (Deno.uid() === 0) {
      // This machine as root: cgroup v1 memory and pids (the issue's stated facts); elsewhere
      // at least something whole-run or nothing, never the per-user rlimit.
      assert.notEqual(MECHANISM.get("processes"), "rlimit");
    } else {
      assert.ok(MECHANISM.get("processes") !== undefined);
    }
  },
});

Deno.test({
  name: skipReason(
    `--max-processes 32 stops a fork loop (${
      WHOLE_RUN("processes") ? "the whole run: 31 children" : "per user: fewer than asked"
    })`,
    NO_PYTHON,
  ),
  ignore: NO_PYTHON !== undefined,
  async fn(t) {
    const tries = 60;
    await t.step("positive control: with --max-processes 0 all 60 start", async () => {
      const out = await python(FORK_COUNT(tries), ["--max-processes", "0", ...SUPERVISED]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout.trim(), String(tries));
    });
    await t.step("32 tasks, the command itself included", async () => {
      // A limit asked for supervises the command (the cgroup's counter tells what happened).
      const out = await python(FORK_COUNT(tries), ["--max-processes", "32"]);
      assert.equal(out.code, 0, out.stderr);
      const started = Number(out.stdout.trim());
      if (WHOLE_RUN("processes")) {
        assert.equal(started, 31, out.stderr);
        assert.match(
          out.stderr,
          /exceeded --max-processes 32 \(cgroup v[12] pids: \d+ forks? refused\)/,
        );
      } else {
        // RLIMIT_NPROC counts the user's other tasks too, and those that end meanwhile free
        // room: not exactly 31, but far from 60.
        assert.ok(started < tries, `${started} started`);
      }
    });
    await t.step("limitExceeded", async () => {
      const status = await pythonJson(FORK_COUNT(tries), ["--max-processes", "32"]);
      assert.equal(status.exitCode, 0, status.stderr);
      // A refused fork leaves a trace only in a cgroup's counter.
      assert.equal(status.limitExceeded, WHOLE_RUN("processes") ? "processes" : null);
    });
  },
});

Deno.test({
  name: skipReason(
    "the supervisor stays responsive: an endless fork loop at the cap still times out (124)",
    NO_PYTHON,
  ),
  ignore: NO_PYTHON !== undefined,
  async fn() {
    // Forks forever, keeping every child; each refused fork is retried at once.
    const endless = `
import os
while True:
    try:
        if os.fork() == 0:
            os.read(os.pipe()[0], 1)
    except OSError:
        pass
`;
    const out = await python(endless, ["--max-processes", "32", "--timeout", "2s"]);
    assert.equal(out.code, 124, out.stderr);
    assert.match(out.stderr, /timed out after 2000 ms; killed/);
  },
});

Deno.test({
  name: skipReason(
    `--max-memory 64M: 32M is allocated, 128M is not (${
      WHOLE_RUN("memory") ? "killed by the OOM killer, 137" : "RLIMIT_AS: the allocation fails"
    })`,
    NO_PYTHON,
  ),
  ignore: NO_PYTHON !== undefined,
  async fn(t) {
    await t.step("positive control: 32M under --max-memory 64M", async () => {
      const status = await pythonJson(ALLOCATE(32), ["--max-memory", "64M"]);
      assert.equal(status.exitCode, 0, status.stderr);
      assert.equal(status.stdout, "allocated 32M\n");
      assert.equal(status.limitExceeded, null);
    });
    await t.step("positive control: 128M without a limit", async () => {
      const status = await pythonJson(ALLOCATE(128), []);
      assert.equal(status.exitCode, 0, status.stderr);
      assert.equal(status.stdout, "allocated 128M\n");
    });
    await t.step("128M under --max-memory 64M", async () => {
      const status = await pythonJson(ALLOCATE(128), ["--max-memory", "64M"]);
      assert.equal(status.stdout, "");
      if (WHOLE_RUN("memory")) {
        assert.equal(status.exitCode, 137, status.stderr);
        assert.equal(status.limitExceeded, "memory");
      } else {
        assert.match(status.stderr, /MemoryError/);
        assert.equal(status.exitCode, 1);
        // A failed allocation is not an end the kernel reports: nothing to attribute.
        assert.equal(status.limitExceeded, null);
      }
    });
    if (WHOLE_RUN("memory")) {
      await t.step("the line naming the limit, and -q without it", async () => {
        const out = await python(ALLOCATE(128), ["--max-memory", "64M"]);
        assert.equal(out.code, 137);
        assert.match(
          out.stderr,
          /^llmx-sandbox: the command exceeded --max-memory 64M \(cgroup v[12] memory: killed by the kernel's OOM killer\)$/m,
        );
        const quiet = await python(ALLOCATE(128), ["-q", "--max-memory", "64M"]);
        assert.equal(quiet.code, 137);
        assert.doesNotMatch(quiet.stderr, /llmx-sandbox/);
      });
    }
  },
});

Deno.test({
  name: skipReason("--max-cpu 1s ends a spin with SIGXCPU (152); 3s of CPU without it", NO_PYTHON),
  ignore: NO_PYTHON !== undefined,
  async fn(t) {
    await t.step("positive control: the spin ends by itself", async () => {
      const status = await pythonJson(SPIN(3), []);
      assert.equal(status.exitCode, 0, status.stderr);
      assert.equal(status.stdout, "spun\n");
    });
    await t.step("under --max-cpu 1s", async () => {
      const status = await pythonJson(SPIN(3), ["--max-cpu", "1s"]);
      assert.equal(status.stdout, "");
      assert.equal(status.exitCode, 128 + 24, status.stderr);
      assert.equal(status.limitExceeded, "cpu");
    });
    await t.step({
      name: skipReason(
        "a SIGXCPU the command raises itself is not the limit's",
        NO_KILL_CGROUP,
      ),
      ignore: NO_KILL_CGROUP !== undefined,
      fn: async () => {
        const raise = "import os, signal; os.kill(os.getpid(), signal.SIGXCPU)";
        const status = await pythonJson(raise, ["--max-cpu", "60s"]);
        assert.equal(status.exitCode, 152, status.stderr);
        assert.equal(status.limitExceeded, null);
      },
    });
    await t.step("the line naming the limit", async () => {
      const out = await python(SPIN(3), ["--max-cpu", "1s"]);
      assert.equal(out.code, 152);
      assert.match(
        out.stderr,
        /^llmx-sandbox: the command exceeded --max-cpu 1s \(RLIMIT_CPU: killed by SIGXCPU\)$/m,
      );
    });
  },
});

Deno.test({
  name: skipReason(
    "--max-file-size 4K: 4K is written, a write past it gets SIGXFSZ (153)",
    NO_DD,
  ),
  ignore: NO_DD !== undefined,
  async fn(t) {
    const dir = tempDir();
    try {
      // dd itself is the command: the kernel's signal reaches the supervisor as such.
      const write = (bytes: number, flags: string[]) =>
        runCli([
          "--json",
          "-s",
          "disk-write-cwd",
          ...flags,
          "--",
          "dd",
          "if=/dev/zero",
          "of=out",
          "bs=1024",
          `count=${bytes / 1024}`,
          "status=none",
        ], { cwd: dir });
      await t.step("positive control: 4K under --max-file-size 4K", async () => {
        const status = JSON.parse((await write(4096, ["--max-file-size", "4K"])).stdout);
        assert.equal(status.exitCode, 0, status.stderr);
        assert.equal(status.limitExceeded, null);
        assert.equal(Deno.statSync(`${dir}/out`).size, 4096);
      });
      await t.step("8K under --max-file-size 4K", async () => {
        const status = JSON.parse((await write(8192, ["--max-file-size", "4K"])).stdout);
        assert.equal(status.exitCode, 153, status.stderr);
        assert.equal(status.signal, "SIGXFSZ");
        assert.equal(status.limitExceeded, "file-size");
        assert.equal(Deno.statSync(`${dir}/out`).size, 4096);
      });
      await t.step("an exit code of 153 by itself is no evidence", async () => {
        const out = await runCli(["--json", "--max-file-size", "4K", "--", "sh", "-c", "exit 153"]);
        const status = JSON.parse(out.stdout);
        assert.equal(status.exitCode, 153);
        assert.equal(status.limitExceeded, null);
      });
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: skipReason("--max-open-files 16: a descriptor past it is EMFILE", NO_PYTHON),
  ignore: NO_PYTHON !== undefined,
  async fn(t) {
    await t.step("positive control: 64 open without it", async () => {
      const status = await pythonJson(OPEN_COUNT(64), []);
      assert.equal(status.exitCode, 0, status.stderr);
      assert.equal(status.stdout, "64\n");
    });
    await t.step("under --max-open-files 16", async () => {
      const status = await pythonJson(OPEN_COUNT(64), ["--max-open-files", "16"]);
      assert.equal(status.exitCode, 0, status.stderr);
      // 0, 1 and 2 are open; 3 to 15 are what is left: 13. EMFILE is 24.
      assert.equal(status.stdout, "refused 24\n13\n");
      // EMFILE is a failed call the command handled: the kernel leaves no trace to report.
      assert.equal(status.limitExceeded, null);
    });
  },
});

Deno.test({
  name: skipReason("the default process cap is on, in place and supervised", NO_PYTHON),
  ignore: NO_PYTHON !== undefined,
  async fn(t) {
    // Reads the cap the command is under: pids.max of its pids cgroup, or RLIMIT_NPROC.
    const readCap = `
import re
mechanism = "${MECHANISM.get("processes")}"
if mechanism == "rlimit":
    for line in open("/proc/self/limits"):
        if line.startswith("Max processes"):
            print(line.split()[2])
else:
    for line in open("/proc/self/cgroup"):
        hierarchy, controllers, path = line.rstrip("\\n").split(":", 2)
        if (mechanism == "cgroup-v1" and "pids" in controllers.split(",")) or \\
           (mechanism == "cgroup-v2" and hierarchy == "0"):
            kind = "cgroup" if mechanism == "cgroup-v1" else "cgroup2"
            for mount in open("/proc/self/mountinfo"):
                fields = mount.split()
                tail = fields[fields.index("-") + 1:]
                if tail[0] == kind and (kind == "cgroup2" or "pids" in tail[2].split(",")):
                    print(open(fields[4] + path + "/pids.max").read().strip())
                    break
`;
    for (const [mode, flags] of [["in place", []], ["supervised", SUPERVISED]] as const) {
      await t.step(mode, async () => {
        const explained = JSON.parse((await python(readCap, ["--explain", ...flags])).stdout);
        const planned = explained.limits.limits.find((limit: { name: string }) =>
          limit.name === "processes"
        );
        assert.equal(planned.isDefault, true);
        assert.equal(planned.value, 4096);
        assert.equal(planned.mechanism, MECHANISM.get("processes"));
        const out = await python(readCap, flags);
        assert.equal(out.code, 0, out.stderr);
        if (planned.mechanism === "rlimit") {
          // The user's tasks when planned, plus the cap.
          assert.ok(Number(out.stdout.trim()) >= 4096, out.stdout);
        } else {
          assert.equal(out.stdout.trim(), "4096");
        }
      });
    }
    await t.step("--max-processes 0 lifts it", async () => {
      const explained = JSON.parse(
        (await python(readCap, ["--explain", "--max-processes", "0"])).stdout,
      );
      assert.deepEqual(explained.limits.limits, []);
    });
  },
});

Deno.test("--explain names each limit's mechanism, the one --probe names", async () => {
  const out = await runCli([
    "--explain",
    "--max-memory",
    "64M",
    "--max-processes",
    "32",
    "--max-cpu",
    "1500ms",
    "--max-file-size",
    "1G",
    "--max-open-files",
    "256",
    "--",
    "true",
  ]);
  assert.equal(out.code, 0, out.stderr);
  const limits: { name: LimitName; mechanism: string; shown: string; notes: string[] }[] =
    JSON.parse(out.stdout).limits.limits;
  assert.deepEqual(
    limits.map((limit) => [limit.name, limit.mechanism, limit.shown]),
    [
      ["memory", MECHANISM.get("memory"), "64M"],
      ["processes", MECHANISM.get("processes"), "32"],
      ["cpu", "rlimit", "1s500ms"],
      ["file-size", "rlimit", "1G"],
      ["open-files", "rlimit", "256"],
    ],
  );
  assert.match(limits[2].notes.join(" "), /whole seconds.*less than a second more/);
});

Deno.test("--require-full refuses a limit enforced per process only (125), runs nothing", async () => {
  const dir = tempDir();
  try {
    const flags = ["--require-full", "-s", "disk-write-cwd", "--max-cpu", "10s"];
    const control = await runCli(
      ["-s", "disk-write-cwd", "--max-cpu", "10s", "--", "touch", "ran"],
      {
        cwd: dir,
      },
    );
    assert.equal(control.code, 0, control.stderr);
    Deno.removeSync(`${dir}/ran`);
    const out = await runCli([...flags, "--", "touch", "ran"], { cwd: dir });
    assert.equal(out.code, 125);
    assert.match(out.stderr, /--max-cpu/);
    assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
    assert.throws(() => Deno.statSync(`${dir}/ran`));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a bad limit is one line naming it, exit 2, from the command line and a config file", async () => {
  for (
    const [args, pattern] of [
      [["--max-memory", "64X"], /--max-memory: "64X"/],
      [["--max-memory", "512"], /--max-memory: "512" \(at least 16M/],
      [["--max-processes", "-1"], /--max-processes/],
      [["--max-cpu", "soon"], /--max-cpu: "soon"/],
      [["--max-open-files", "0"], /--max-open-files: "0" \(at least 1\)/],
    ] as const
  ) {
    const out = await runCli([...args, "--", "true"]);
    assert.equal(out.code, 2, args.join(" "));
    assert.match(out.stderr, pattern);
    assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
  }
  const dir = tempDir();
  try {
    const config = `${dir}/config.json`;
    Deno.writeTextFileSync(config, JSON.stringify({ limits: { "max-memory": "lots" } }));
    const out = await runCli(["--config", config, "--", "true"]);
    assert.equal(out.code, 2);
    assert.match(out.stderr, /limits\.max-memory/);
    assert.match(out.stderr, /"lots"/);
    Deno.writeTextFileSync(config, JSON.stringify({ limits: { "max-memroy": "1G" } }));
    const typo = await runCli(["--config", config, "--", "true"]);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /max-memroy/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test({
  name: skipReason("a config file's limits apply, and the command line's win", NO_PYTHON),
  ignore: NO_PYTHON !== undefined,
  async fn() {
    const dir = tempDir();
    try {
      const config = `${dir}/config.json`;
      Deno.writeTextFileSync(
        config,
        JSON.stringify({ limits: { "max-open-files": 16, "max-cpu": "1m" } }),
      );
      const fromFile = await pythonJson(OPEN_COUNT(64), ["--config", config]);
      assert.equal(fromFile.stdout, "refused 24\n13\n");
      const overridden = await pythonJson(OPEN_COUNT(64), [
        "--config",
        config,
        "--max-open-files",
        "32",
      ]);
      assert.equal(overridden.stdout, "refused 24\n29\n");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: skipReason("the library: limits, and limitExceeded in the result", NO_PYTHON),
  ignore: NO_PYTHON !== undefined,
  async fn() {
    const control = await execSandboxed({ command: ["python3", "-c", SPIN(3)] }, []);
    assert.equal(control.exitCode, 0);
    assert.equal(control.limitExceeded, null);
    const result = await execSandboxed({
      command: ["python3", "-c", SPIN(3)],
      limits: { cpuMs: 1000 },
    }, []);
    assert.equal(result.exitCode, 152);
    assert.equal(result.limitExceeded, "cpu");
    assert.match(result.limitMessage ?? "", /--max-cpu 1s/);
    await assert.rejects(
      () => execSandboxed({ command: ["true"], limits: { openFiles: 0 } }, []),
      /--max-open-files: "0"/,
    );
  },
});
