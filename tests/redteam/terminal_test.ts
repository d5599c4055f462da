// Red team, the terminal: the command shares the user's terminal (in-place mode hands it over
// as is), so it must not type into it. Run under a pseudo-terminal this test owns: whatever is
// typed is echoed back to us and never read by a shell.

import assert from "node:assert/strict";
import { runBpf } from "../_bpf.ts";
import { exists, MAIN, run, runCli, tempDir } from "../_helpers.ts";
import { planSandbox } from "../../policy/plan.ts";
import { probeKernel } from "../../exec/kernel.ts";
import { PYTHON } from "../_net.ts";
import {
  AUDIT_ARCH,
  compileSeccomp,
  EPERM,
  planSeccomp,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  type SeccompArch,
  SYSCALL_NUMBERS,
  TIOCLINUX,
} from "../../policy/seccomp.ts";
import { SandboxPolicy } from "../../policy/sandbox_policy.ts";
import {
  describeLayers,
  firstReason,
  layeredPlan,
  type Layers,
  NO_GCC,
  probe,
  probeCommand,
  runPlan,
  threatTest,
  withPlanFile,
} from "./_redteam.ts";

const POLICY = new SandboxPolicy([]);

// Runs a command as the session leader of a new pseudo-terminal (its controlling terminal, on
// stdin, stdout and stderr), and prints everything the terminal showed, then the exit status.
const PTY_PY = `
import json, os, pty, sys
pid, master = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
shown = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:  # EIO: every holder of the other side is gone
        break
    if not chunk:
        break
    shown += chunk
_, status = os.waitpid(pid, 0)
print(json.dumps({"shown": shown.decode("utf-8", "replace"), "status": os.waitstatus_to_exitcode(status)}))
`;

function legacyTiocstiOff(): string | undefined {
  try {
    const value = Deno.readTextFileSync("/proc/sys/dev/tty/legacy_tiocsti").trim();
    if (value === "0" && Deno.uid() !== 0) {
      return "TIOCSTI needs CAP_SYS_ADMIN on this kernel (dev.tty.legacy_tiocsti = 0)";
    }
  } catch {
    // Older kernels: TIOCSTI is always there.
  }
  return undefined;
}

const NO_PTY = PYTHON ? undefined : "python3 not installed (the pseudo-terminal)";

async function underTerminal(
  command: readonly string[],
): Promise<{ shown: string; status: number }> {
  const out = await run(PYTHON!, ["-c", PTY_PY, ...command]);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout);
}

threatTest("tiocsti", firstReason(NO_GCC, NO_PTY, legacyTiocstiOff()), async (t) => {
  // Typed without a newline: even a reader in canonical mode would never get a line of it.
  const marker = `llmx-typed-${crypto.randomUUID()}`;
  const hex = [...new TextEncoder().encode(marker)]
    .map((byte) => byte.toString(16).padStart(2, "0")).join("");
  const args = ["tiocsti", hex];
  const layered = (layers: Layers) =>
    withPlanFile(layeredPlan(POLICY, probeCommand(args), layers), underTerminal);

  await t.step("positive control: types into the terminal without the sandbox", async () => {
    const { shown, status } = await underTerminal([probe(), ...args]);
    assert.equal(status, 0, shown);
    assert.ok(shown.includes(marker), `the terminal echoes what was typed: ${shown}`);
    assert.match(shown, /ok injected/);
  });
  await t.step("positive control: types into the terminal with no layer", async () => {
    const { shown, status } = await layered([]);
    assert.equal(status, 0, shown);
    assert.ok(shown.includes(marker), shown);
  });
  const variants: Layers[] = [["seccomp"], "all"];
  for (const layers of variants) {
    await t.step(`${describeLayers(layers)}: ioctl EPERM`, async () => {
      const { shown, status } = await layered(layers);
      assert.equal(status, 1, shown);
      assert.match(shown, /^refused ioctl EPERM\r?\n$/);
      assert.ok(!shown.includes(marker), "nothing was typed");
    });
  }
});

threatTest("tioclinux", undefined, () => {
  const arches: SeccompArch[] = ["x86_64", "aarch64"];
  for (const arch of arches) {
    const data = { nr: SYSCALL_NUMBERS[arch].ioctl, arch: AUDIT_ARCH[arch], args: [0, TIOCLINUX] };
    // Positive control: a filter without the row lets the same ioctl through.
    assert.equal(runBpf(compileSeccomp(arch, []), data), SECCOMP_RET_ALLOW);
    for (const restrictNetwork of [true, false]) {
      const { program } = planSeccomp({ arch, restrictNetwork });
      assert.equal(runBpf(program, data), (SECCOMP_RET_ERRNO | EPERM) >>> 0, arch);
    }
  }
});

// A pseudo-terminal this test owns, as another session's would be: its slave's name is printed,
// then a line typed into it (written to the master, so it waits in the slave's input).
const TYPED_PY = `
import os, pty, sys
master, slave = pty.openpty()
print(os.ttyname(slave), flush=True)
os.write(master, sys.argv[1].encode() + b"\\n")
sys.stdin.read()
`;

threatTest("other-terminal", firstReason(NO_GCC, NO_PTY), async (t) => {
  const secret = `llmx-typed-${crypto.randomUUID()}`;
  // A fresh line is typed for each attempt (a successful read takes it).
  const holder = async () => {
    const child = new Deno.Command(PYTHON!, {
      args: ["-c", TYPED_PY, secret],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let line = "";
    while (!line.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the pseudo-terminal's holder ended");
      line += value;
    }
    return {
      pts: line.trim(),
      async close() {
        await child.stdin.close();
        await reader.cancel();
        await child.status;
      },
    };
  };
  const attempt = async (fn: (args: string[]) => Promise<{ stdout: string; code: number }>) => {
    const terminal = await holder();
    try {
      return await fn(["read", terminal.pts]);
    } finally {
      await terminal.close();
    }
  };
  await t.step("positive control: reads what was typed, without the sandbox", async () => {
    const out = await attempt((args) => run(probe(), args));
    assert.equal(out.stdout, `ok ${secret}\n`);
  });
  await t.step("positive control: with no layer too", async () => {
    const out = await attempt((args) => runPlan(layeredPlan(POLICY, probeCommand(args), [])));
    assert.equal(out.stdout, `ok ${secret}\n`);
  });
  for (const layers of [["landlock"], "all"] as Layers[]) {
    await t.step(`supervised, ${describeLayers(layers)}: open EACCES`, async () => {
      const out = await attempt((args) => runPlan(layeredPlan(POLICY, probeCommand(args), layers)));
      assert.equal(out.stdout, "refused open EACCES\n");
    });
  }
  await t.step("in place, all layers: open EACCES", async () => {
    const out = await attempt((args) =>
      withPlanFile(
        layeredPlan(POLICY, probeCommand(args), "all"),
        (argv) => run(argv[0], argv.slice(1)),
      )
    );
    assert.equal(out.stdout, "refused open EACCES\n");
  });
});

threatTest("tty-takeover", firstReason(NO_GCC, NO_PTY), async (t) => {
  // The CLI runs as the session leader of a pseudo-terminal this test owns (its controlling
  // terminal), as in a user's shell; the command tries to open that terminal by /dev/tty.
  const cli = (flags: string[], extra: string[] = []) =>
    underTerminal([
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      MAIN,
      "-q",
      ...flags,
      "--",
      probe(),
      "read",
      "/dev/tty",
      ...extra,
    ]);
  await t.step("positive control: in place, the command has the terminal", async () => {
    const { shown, status } = await cli([]);
    assert.equal(status, 0, shown);
    assert.match(shown, /^ok /);
  });
  await t.step("supervised: no controlling terminal, no /dev/tty", async () => {
    const { shown, status } = await cli(["--timeout", "30000"]);
    assert.equal(status, 1, shown);
    assert.match(shown, /^refused open (EACCES|ENXIO)\r?\n$/);
  });
  await t.step("supervised with a /dev/tty rule: the session alone refuses (ENXIO)", async () => {
    // The plan grants /dev/tty as in place; only the session of its own stands in the way.
    const plan = planSandbox(SandboxPolicy.readOnly(), {
      ...probeCommand(["read", "/dev/tty"]),
      terminal: { devices: [], controlling: true },
    }, probeKernel());
    assert.ok(plan.landlock.rules.some((rule) => rule.path === "/dev/tty"));
    await withPlanFile(plan, async () => {
      const dir = Deno.makeTempDirSync({ prefix: "llmx-redteam-tty-" });
      try {
        Deno.writeTextFileSync(`${dir}/plan.json`, JSON.stringify(plan));
        Deno.writeTextFileSync(
          `${dir}/supervise.ts`,
          `import { spawnPlan } from ${
            JSON.stringify(new URL("../../exec/spawn.ts", import.meta.url).href)
          };
const plan = JSON.parse(Deno.readTextFileSync(Deno.args[0]));
const status = await spawnPlan(plan, { stdin: "inherit", stdout: "inherit", stderr: "inherit" }).status;
Deno.exit(status.exitCode);
`,
        );
        const { shown, status } = await underTerminal([
          Deno.execPath(),
          "run",
          "-A",
          "--quiet",
          `${dir}/supervise.ts`,
          `${dir}/plan.json`,
        ]);
        assert.equal(status, 1, shown);
        assert.match(shown, /^refused open ENXIO\r?\n$/);
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    });
  });
});

threatTest("writable-pts", undefined, async (t) => {
  const dir = tempDir();
  try {
    const marker = `${dir}/ran`;
    const touch = ["--", "sh", "-c", `touch ${marker}`];
    await t.step("positive control: /dev/shm, a /dev folder of scratch space, is granted", () => {
      const plan = planSandbox(
        new SandboxPolicy(["disk-full-read-access", "disk-write-folder=/dev/shm"]),
        probeCommand(["true"]),
        probeKernel(),
      );
      assert.ok(plan.writableRoots.includes("/dev/shm"));
    });
    for (const folder of ["/dev/pts", "/dev"]) {
      await t.step(`${folder}: refused (exit 2), nothing runs`, async () => {
        const out = await runCli(["-s", `disk-write-folder=${folder}`, ...touch]);
        assert.equal(out.code, 2, out.stderr);
        assert.match(out.stderr, /is in \/proc, \/sys or \/dev/);
        assert.ok(!exists(marker), "nothing ran");
      });
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

// Runs the CLI with a pseudo-terminal this test owns on its stdin (not as its controlling
// terminal), and says whether the terminal echoes after the CLI ended.
const ECHO_PY = `
import json, os, pty, subprocess, sys, termios
master, slave = pty.openpty()
before = bool(termios.tcgetattr(slave)[3] & termios.ECHO)
on = sys.argv[1]
streams = {"stdin": slave, "stdout": subprocess.PIPE} if on == "stdin" else {"stdin": subprocess.DEVNULL, "stdout": slave}
done = subprocess.run(sys.argv[2:], stderr=subprocess.PIPE, **streams)
after = bool(termios.tcgetattr(slave)[3] & termios.ECHO)
print(json.dumps({"before": before, "after": after, "status": done.returncode,
                  "stderr": done.stderr.decode("utf-8", "replace")}))
`;

threatTest("terminal-settings", NO_PTY, async (t) => {
  const echoAfter = async (flags: string[], on: "stdin" | "stdout" = "stdin") => {
    const out = await run(PYTHON!, [
      "-c",
      ECHO_PY,
      on,
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      MAIN,
      "-q",
      ...flags,
      "--",
      "sh",
      "-c",
      "if [ -t 0 ]; then stty -echo; else stty -echo <&1; fi",
    ]);
    assert.equal(out.code, 0, out.stderr);
    const result = JSON.parse(out.stdout);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.before, true, "the terminal echoed before");
    return result.after as boolean;
  };
  await t.step("positive control: in place, the command's setting stays", async () => {
    assert.equal(await echoAfter([]), false);
  });
  await t.step("supervised: echo is back when the command ends", async () => {
    assert.equal(await echoAfter(["--timeout", "30s"]), true);
  });
  await t.step("supervised, the terminal on stdout only: echo is back too", async () => {
    assert.equal(await echoAfter(["--timeout", "30s"], "stdout"), true);
  });
});
