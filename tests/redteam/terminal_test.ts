// Red team, the terminal: the command shares the user's terminal (in-place mode hands it over
// as is), so it must not type into it. Run under a pseudo-terminal this test owns: whatever is
// typed is echoed back to us and never read by a shell.

import assert from "node:assert/strict";
import { runBpf } from "../_bpf.ts";
import { run } from "../_helpers.ts";
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
