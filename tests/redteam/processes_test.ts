// Red team, other processes: reading, writing, borrowing from and signalling a process outside
// the sandbox. Every target is a process this test started; kill(-1) runs in a private PID
// namespace, where "every process" is the namespace's.

import assert from "node:assert/strict";
import { MODES, run, runCli, tempDir, which } from "../_helpers.ts";
import { SandboxPolicy } from "../../policy/sandbox_policy.ts";
import {
  assertLayers,
  firstReason,
  landlockBelow,
  layeredPlan,
  type Layers,
  NO_GCC,
  nobody,
  NOT_ROOT,
  probe,
  probeCommand,
  runProbe,
  Target,
  threatTest,
  withPlanFile,
} from "./_redteam.ts";

const POLICY = new SandboxPolicy([]);
const SIGNAL_SCOPE = landlockBelow(6);

/** The denials of a ptrace-class escape: the same EPERM from each layer that can refuse it. */
function ptraceClass(call: string) {
  return [
    // A Landlock domain refuses ptrace-class access to any process outside it.
    { layers: ["landlock"], refused: `${call} EPERM` },
    // Without a domain, the filter carries rows that refuse the call outright.
    { layers: ["seccomp"], refused: `${call} EPERM` },
    // As root: a target holding capabilities the command does not hold is out of reach.
    { layers: ["capabilities"], refused: `${call} EPERM`, skip: NOT_ROOT },
    { layers: "all", refused: `${call} EPERM` },
  ] as const;
}

/** Runs a case against one target that lives for the whole case. */
async function withTarget(fn: (target: Target) => Promise<void>, file?: string): Promise<void> {
  const target = await Target.start(file);
  try {
    await fn(target);
  } finally {
    await target.stop();
  }
}

threatTest("ptrace", NO_GCC, async (t) => {
  await withTarget(async (target) => {
    await assertLayers(t, {
      policy: POLICY,
      args: ["ptrace", String(target.pid), target.address],
      worked: "read llmx-sec",
      // Detached again: the target still answers.
      reached: async () => assert.equal(await target.secret(), target.original),
      denials: ptraceClass("ptrace"),
    });
  });
});

threatTest("vm-read", NO_GCC, async (t) => {
  await withTarget(async (target) => {
    await assertLayers(t, {
      policy: POLICY,
      args: ["vm-read", String(target.pid), target.address],
      worked: `read ${target.original}`,
      denials: ptraceClass("process_vm_readv"),
    });
  });
});

threatTest("vm-write", NO_GCC, async (t) => {
  await withTarget(async (target) => {
    await assertLayers(t, {
      policy: POLICY,
      args: ["vm-write", String(target.pid), target.address, "pwned"],
      worked: "wrote",
      async reached() {
        assert.equal(await target.secret(), "pwned");
        // Put the secret back, with the same call, for the next run.
        const restored = await runProbe([
          "vm-write",
          String(target.pid),
          target.address,
          target.original,
        ]);
        assert.equal(restored.stdout, "ok wrote\n");
      },
      unchanged: async () => assert.equal(await target.secret(), target.original),
      denials: ptraceClass("process_vm_writev"),
    });
  });
});

threatTest("pidfd-getfd", NO_GCC, async (t) => {
  const dir = tempDir();
  const file = `${dir}/held`;
  Deno.writeTextFileSync(file, "");
  try {
    await withTarget(async (target) => {
      assert.ok(target.fd > 2, "the target holds the file open");
      await assertLayers(t, {
        policy: POLICY,
        args: ["pidfd-getfd", String(target.pid), String(target.fd), "pwned\n"],
        worked: "wrote",
        reached() {
          assert.equal(Deno.readTextFileSync(file), "pwned\n");
          Deno.writeTextFileSync(file, "");
        },
        unchanged: () => assert.equal(Deno.readTextFileSync(file), ""),
        denials: ptraceClass("pidfd_getfd"),
      });
    }, file);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** A fresh victim for each run of a signal case; it must end by the probe's SIGTERM, or not. */
function victims() {
  let victim: Target | undefined;
  return {
    async args(command: (pid: string) => string[]): Promise<string[]> {
      victim = await Target.start();
      return command(String(victim.pid));
    },
    async reached() {
      assert.equal((await victim!.ended()).signal, "SIGTERM", "the probe's SIGTERM killed it");
    },
    async unchanged() {
      // Still running: our SIGKILL is what ends it (a SIGTERM sent before would have won).
      assert.equal((await victim!.stop()).signal, "SIGKILL", "no signal reached it");
    },
    async stop() {
      await victim?.stop();
    },
  };
}

threatTest("pidfd-signal", NO_GCC, async (t) => {
  const target = victims();
  try {
    await assertLayers(t, {
      policy: POLICY,
      args: () => target.args((pid) => ["pidfd-signal", pid]),
      worked: "sent",
      reached: target.reached,
      unchanged: target.unchanged,
      denials: [
        { layers: ["landlock"], refused: "pidfd_send_signal EPERM", skip: SIGNAL_SCOPE },
        // Without the signal scope, the filter refuses the call outright.
        { layers: ["seccomp"], refused: "pidfd_send_signal EPERM" },
        { layers: "all", refused: "pidfd_send_signal EPERM" },
      ],
    });
  } finally {
    await target.stop();
  }
});

threatTest("kill", NO_GCC, async (t) => {
  const target = victims();
  try {
    await assertLayers(t, {
      policy: POLICY,
      runAs: NOT_ROOT ? undefined : nobody(),
      args: () => target.args((pid) => ["kill", pid, "15"]),
      worked: "sent",
      reached: target.reached,
      unchanged: target.unchanged,
      denials: [
        { layers: ["landlock"], refused: "kill EPERM", skip: SIGNAL_SCOPE },
        // As another user, the kernel's own check refuses: the victim is root's.
        { layers: ["run_as"], refused: "kill EPERM", skip: NOT_ROOT },
        { layers: "all", refused: "kill EPERM", skip: SIGNAL_SCOPE },
      ],
    });
  } finally {
    await target.stop();
  }
});

// kill(-1) as root would reach every process of the machine; in a private PID namespace it
// reaches only the namespace's. There: the namespace's init (this script, immune), a victim, and
// the attacker. The victim's end says whether the attacker's SIGTERM reached it.
const IN_NAMESPACE = `
sleep 1000 &
victim=$!
"$@"
kill -KILL "$victim" 2>/dev/null
wait "$victim"
echo "victim $?"
`;

function namespaceUnavailable(): string | undefined {
  if (NOT_ROOT) return "needs root for a private PID namespace";
  for (const tool of ["unshare", "sleep"]) if (!which(tool)) return `${tool} not installed`;
  const out = new Deno.Command("unshare", {
    args: ["--pid", "--fork", "--mount-proc", "true"],
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  return out.success
    ? undefined
    : `cannot make a private PID namespace: ${new TextDecoder().decode(out.stderr).trim()}`;
}

threatTest("kill-all", firstReason(NO_GCC, namespaceUnavailable()), async (t) => {
  const attack = ["kill", "-1", "15"];
  const inNamespace = async (command: readonly string[]) => {
    const out = await run("unshare", [
      "--pid",
      "--fork",
      "--mount-proc",
      "sh",
      "-c",
      IN_NAMESPACE,
      "sh",
      ...command,
    ]);
    const [result, victim] = out.stdout.trimEnd().split("\n");
    return { result, victim, stderr: out.stderr };
  };
  // 143 = 128 + SIGTERM: the attacker's signal. 137 = 128 + SIGKILL: ours, it was not reached.
  await t.step("positive control: reaches the victim without the sandbox", async () => {
    const { result, victim, stderr } = await inNamespace([probe(), ...attack]);
    assert.equal(result, "ok sent", stderr);
    assert.equal(victim, "victim 143");
  });
  const cases: [string, Layers, string, string | undefined][] = [
    ["positive control: reaches the victim with no layer", [], "ok sent", undefined],
    // Landlock skips every process outside the domain; kill(-1) then reports no error.
    ["Landlock alone: the victim is skipped", ["landlock"], "ok sent", SIGNAL_SCOPE],
    ["seccomp alone: kill EPERM", ["seccomp"], "refused kill EPERM", undefined],
    ["all layers: the victim is skipped", "all", "ok sent", SIGNAL_SCOPE],
  ];
  for (const [name, layers, expected, skip] of cases) {
    await t.step({
      name: skip ? `${name} (skipped: ${skip})` : name,
      ignore: skip !== undefined,
      fn: async () => {
        // The plan is applied in the namespace's own /proc: that one is not the /proc it was
        // planned with (the child refuses a rule on another file), and the probe needs none.
        const policy = POLICY.withPaths({ hide: ["/proc"] });
        const plan = layeredPlan(policy, probeCommand(attack), layers);
        const { result, victim, stderr } = await withPlanFile(plan, inNamespace);
        assert.equal(result, expected, stderr);
        assert.equal(victim, layers.length === 0 ? "victim 143" : "victim 137");
      },
    });
  }
});

/** A System V shared-memory segment held by a process of ours, outside the sandbox. */
class SegmentHolder {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buffered = "";
  id = "";

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  static async start(): Promise<SegmentHolder> {
    const child = new Deno.Command(probe(), {
      args: ["shm-hold"],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const holder = new SegmentHolder(child);
    holder.id = await holder.#line();
    assert.match(holder.id, /^[0-9]+$/, "the holder made its segment");
    return holder;
  }

  async #line(): Promise<string> {
    while (!this.#buffered.includes("\n")) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("The segment's holder ended");
      this.#buffered += value;
    }
    const end = this.#buffered.indexOf("\n");
    const line = this.#buffered.slice(0, end);
    this.#buffered = this.#buffered.slice(end + 1);
    return line;
  }

  /** What the segment holds now (after putting "keep" back when `reset`). */
  async content(reset = false): Promise<string> {
    await this.#writer.write(new TextEncoder().encode(reset ? "reset\n" : "show\n"));
    return await this.#line();
  }

  /** Ends it: it removes its segment. */
  async stop(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.#reader.cancel().catch(() => {});
    await this.#child.status;
  }
}

threatTest("sysv-ipc", NO_GCC, async (t) => {
  const holder = await SegmentHolder.start();
  try {
    await t.step("attaching a segment outside and overwriting it", async (t) => {
      await assertLayers(t, {
        policy: POLICY,
        args: ["shm-write", holder.id, "pwned"],
        worked: "written",
        reached: async () => {
          assert.equal(await holder.content(), "pwned");
          assert.equal(await holder.content(true), "keep");
        },
        unchanged: async () => assert.equal(await holder.content(), "keep"),
        denials: [
          { layers: ["seccomp"], refused: "shmat EPERM" },
          { layers: "all", refused: "shmat EPERM" },
        ],
      });
    });
    await t.step("making a segment that would outlive the command", async (t) => {
      await assertLayers(t, {
        policy: POLICY,
        args: ["shm-create"],
        worked: "created",
        denials: [
          { layers: ["seccomp"], refused: "shmget EPERM" },
          { layers: "all", refused: "shmget EPERM" },
        ],
      });
    });
  } finally {
    await holder.stop();
  }
});

const NO_UTIL_LINUX = ["prlimit", "taskset", "renice"].find((tool) => !which(tool));

threatTest(
  "limits-of-others",
  NO_UTIL_LINUX && `${NO_UTIL_LINUX} not installed`,
  async (t) => {
    const target = new Deno.Command("sleep", { args: ["60"], stdout: "null", stderr: "null" })
      .spawn();
    const limit = () =>
      /^Max open files\s+(\d+)/m.exec(Deno.readTextFileSync(`/proc/${target.pid}/limits`))?.[1];
    const pid = String(target.pid);
    const changes = (nofile: number): [string, string[]][] => [
      ["prlimit", ["prlimit", "--pid", pid, `--nofile=${nofile}:${nofile}`]],
      ["taskset", ["taskset", "-p", "1", pid]],
      ["renice", ["renice", "-n", "5", "-p", pid]],
    ];
    try {
      await t.step("positive control: each works without the sandbox", async () => {
        for (const [name, command] of changes(48)) {
          const out = await run(command[0], command.slice(1));
          assert.equal(out.code, 0, `${name}: ${out.stderr}`);
        }
        assert.equal(limit(), "48");
      });
      for (const mode of MODES) {
        await t.step(`${mode.name}: each is refused (EPERM)`, async () => {
          for (const [name, command] of changes(32)) {
            const out = await runCli(["-q", ...mode.flags, "--cwd", "/", "--", ...command]);
            assert.notEqual(out.code, 0, `${name} ran: ${out.stdout}`);
            assert.match(out.stderr, /Operation not permitted/, name);
          }
          assert.equal(limit(), "48", "the limit is as it was");
        });
      }
      await t.step(
        "the supervisor itself: its limits stay, the timeout still ends the run",
        async () => {
          const out = await runCli([
            "-q",
            "--timeout",
            "3s",
            "--",
            "sh",
            "-c",
            'prlimit --pid "$PPID" --cpu=1:1; echo "prlimit=$?"; sleep 30',
          ]);
          assert.equal(out.code, 124, out.stderr);
          assert.equal(out.stdout, "prlimit=1\n");
        },
      );
    } finally {
      target.kill("SIGKILL");
      await target.status;
    }
  },
);
