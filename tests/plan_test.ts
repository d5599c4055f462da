// The whole plan, against a fake host: what the child will apply for a policy on a kernel.

import assert from "node:assert/strict";
import { type KernelFacts, type PlanHost, planSandbox } from "../policy/plan.ts";
import { SandboxPolicy } from "../policy/sandbox_policy.ts";

/** A host where `/`, `/work`, `/tmp` and the two devices exist, and nothing is a symlink. */
const HOST: PlanHost = {
  tmpdir: () => "/tmp",
  realPath: (path) =>
    ["/", "/work", "/tmp", "/dev/null", "/dev/tty"].includes(path) ? path : undefined,
  isDirectory: (path) =>
    ["/", "/work", "/tmp"].includes(path)
      ? true
      : ["/dev/null", "/dev/tty"].includes(path)
      ? false
      : undefined,
};

const COMMAND = { argv: ["true"], cwd: "/work", env: { PATH: "/usr/bin:/bin" } };

function kernel(overrides: Partial<KernelFacts> = {}): KernelFacts {
  return {
    arch: "x86_64",
    landlockAbi: 7,
    capLastCap: 40,
    uid: 1000,
    effectiveCapabilities: [],
    ...overrides,
  };
}

function syscalls(policy: SandboxPolicy, facts: KernelFacts): string[] {
  const plan = planSandbox(policy, COMMAND, facts, HOST);
  return plan.seccomp?.rules.map((rule) => rule.syscall) ?? [];
}

const PTRACE_CLASS = ["ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd"];
const SIGNALS = ["kill", "pidfd_send_signal"];

Deno.test("planSandbox() adds the seccomp rows for other processes only where Landlock does not confine them", async (t) => {
  const fullAuto = SandboxPolicy.fullAuto();
  const fullWrite = new SandboxPolicy(["disk-full-write-access"]);
  const cases: {
    name: string;
    policy: SandboxPolicy;
    abi: number;
    ptrace: boolean;
    signals: boolean;
  }[] = [
    {
      name: "ABI 7: Landlock confines both",
      policy: fullAuto,
      abi: 7,
      ptrace: false,
      signals: false,
    },
    {
      name: "ABI 6: Landlock confines both",
      policy: fullAuto,
      abi: 6,
      ptrace: false,
      signals: false,
    },
    { name: "ABI 5: no signal scope", policy: fullAuto, abi: 5, ptrace: false, signals: true },
    { name: "ABI 1: no signal scope", policy: fullAuto, abi: 1, ptrace: false, signals: true },
    {
      name: "full write on ABI 4: a domain for TCP, no signal scope",
      policy: fullWrite,
      abi: 4,
      ptrace: false,
      signals: true,
    },
    {
      name: "full write on ABI 3: no domain at all",
      policy: fullWrite,
      abi: 3,
      ptrace: true,
      signals: true,
    },
    { name: "full write without Landlock", policy: fullWrite, abi: 0, ptrace: true, signals: true },
  ];
  for (const { name, policy, abi, ptrace, signals } of cases) {
    await t.step(name, () => {
      const names = syscalls(policy, kernel({ landlockAbi: abi }));
      for (const syscall of PTRACE_CLASS) assert.equal(names.includes(syscall), ptrace, syscall);
      for (const syscall of SIGNALS) assert.equal(names.includes(syscall), signals, syscall);
    });
  }
});

Deno.test("planSandbox() with nothing restricted installs no filter", () => {
  const policy = new SandboxPolicy(["disk-full-write-access", "network-full-access"]);
  const plan = planSandbox(policy, COMMAND, kernel(), HOST);
  assert.equal(plan.seccomp, null);
  assert.equal(plan.landlock.apply, false);
  assert.equal(plan.capabilities, null);
});

const ALL_CAPS = Array.from({ length: 41 }, (_, cap) => cap);

Deno.test("planSandbox() drops every capability of root under a restricted policy", async (t) => {
  for (const policy of [SandboxPolicy.readOnly(), SandboxPolicy.fullAuto()]) {
    await t.step(policy.permissions.map((p) => p.kind).join(", "), () => {
      const plan = planSandbox(
        policy,
        COMMAND,
        kernel({ uid: 0, effectiveCapabilities: ALL_CAPS }),
        HOST,
      );
      assert.deepEqual(plan.capabilities?.keep, []);
      assert.deepEqual(plan.capabilities?.dropBounding, ALL_CAPS);
      assert.equal(plan.capabilities?.lastCap, 40);
    });
  }
});

Deno.test("planSandbox() plans capabilities for a user without any too", () => {
  const plan = planSandbox(SandboxPolicy.readOnly(), COMMAND, kernel(), HOST);
  assert.deepEqual(plan.capabilities?.keep, []);
  assert.deepEqual(plan.capabilities?.dropBounding, [], "no CAP_SETPCAP: the bounding set stays");
  assert.match(plan.capabilities?.notes[0] ?? "", /no_new_privs/);
  assert.equal(plan.noNewPrivs, true);
});
