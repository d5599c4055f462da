// The whole plan, against a fake host: what the child will apply for a policy on a kernel.

import assert from "node:assert/strict";
import { type KernelFacts, type PlanHost, planSandbox, ROOT_WARNING } from "../policy/plan.ts";
import { PolicyError, SandboxPolicy } from "../policy/sandbox_policy.ts";

/** A host where `/`, `/work`, `/tmp`, `/dev` and its two devices exist, and nothing is a symlink. */
const TREE: Record<string, string[] | null> = {
  "/": ["dev", "tmp", "work"],
  "/work": [],
  "/tmp": [],
  "/dev": ["null", "tty"],
  "/dev/null": null,
  "/dev/tty": null,
};
const PATHS = Object.keys(TREE);
const entry = (path: string) =>
  TREE[path] === undefined
    ? undefined
    : { isDirectory: TREE[path] !== null, isSymlink: false, dev: 1, ino: PATHS.indexOf(path) + 2 };
const HOST: PlanHost = {
  tmpdir: () => "/tmp",
  realPath: (path) => TREE[path] === undefined ? undefined : path,
  stat: entry,
  lstat: entry,
  readDir: (path) => TREE[path] ?? undefined,
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
  const fullWrite = new SandboxPolicy(["disk-full-read-access", "disk-full-write-access"]);
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
      name: "full write on ABI 3: a domain that hides /dev, no signal scope",
      policy: fullWrite,
      abi: 3,
      ptrace: false,
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
  const policy = new SandboxPolicy([
    "disk-full-read-access",
    "disk-full-write-access",
    "network-full-access",
    "network-unix-sockets",
  ]);
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

const NOBODY = { spec: "nobody", user: "nobody", uid: 65534, gid: 65534, groups: [65534] };
const ROOT = { uid: 0, effectiveCapabilities: ALL_CAPS };

Deno.test("planSandbox() carries the identity to run as, for a caller that is root", () => {
  const plan = planSandbox(
    SandboxPolicy.fullAuto(),
    { ...COMMAND, runAs: NOBODY },
    kernel(ROOT),
    HOST,
  );
  assert.deepEqual(plan.runAs, NOBODY);
  assert.notEqual(plan.runAs, NOBODY, "a copy: the plan is plain data of its own");
  const unchanged = planSandbox(SandboxPolicy.fullAuto(), COMMAND, kernel(ROOT), HOST);
  assert.equal(unchanged.runAs, null);
});

Deno.test("planSandbox() refuses full write as root unless the network is granted or --run-as", async (t) => {
  const fullWrite = new SandboxPolicy(["disk-full-read-access", "disk-full-write-access"]);
  await t.step("refused: it could rewrite core_pattern and reach the network", () => {
    assert.throws(
      () => planSandbox(fullWrite, COMMAND, kernel(ROOT), HOST),
      (error: unknown) =>
        error instanceof PolicyError && error.kind === "root-full-write" &&
        /core_pattern/.test(error.message) && /--run-as USER/.test(error.message),
    );
  });
  await t.step("positive controls: with --run-as, with the network, or as a user", () => {
    planSandbox(fullWrite, { ...COMMAND, runAs: NOBODY }, kernel(ROOT), HOST);
    const withNetwork = new SandboxPolicy([...fullWrite.permissions, {
      kind: "network-full-access",
    }]);
    planSandbox(withNetwork, COMMAND, kernel(ROOT), HOST);
    planSandbox(fullWrite, COMMAND, kernel(), HOST);
  });
});

Deno.test("planSandbox() refuses another identity for a caller that is not root", () => {
  assert.throws(
    () => planSandbox(SandboxPolicy.fullAuto(), { ...COMMAND, runAs: NOBODY }, kernel(), HOST),
    (error: unknown) =>
      error instanceof PolicyError && error.kind === "invalid-run-as" &&
      /nobody needs root \(this process runs as uid 1000\)/.test(error.message),
  );
});

Deno.test("planSandbox() keeps no capability for another identity, even with full write", () => {
  const policy = new SandboxPolicy(["disk-full-read-access", "disk-full-write-access"]);
  const withNetwork = new SandboxPolicy([...policy.permissions, { kind: "network-full-access" }]);
  const asRoot = planSandbox(withNetwork, COMMAND, kernel(ROOT), HOST);
  assert.deepEqual(asRoot.capabilities?.keepNames, [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
  ]);
  const asNobody = planSandbox(policy, { ...COMMAND, runAs: NOBODY }, kernel(ROOT), HOST);
  assert.deepEqual(asNobody.capabilities?.keep, []);
  assert.deepEqual(asNobody.capabilities?.dropBounding, ALL_CAPS, "dropped while still root");
});

Deno.test("planSandbox() warns when a restricted policy runs as root without another identity", async (t) => {
  const unrestricted = new SandboxPolicy([
    "disk-full-read-access",
    "disk-full-write-access",
    "network-full-access",
    "network-unix-sockets",
  ]);
  const cases: [string, SandboxPolicy, Partial<KernelFacts>, boolean, string[]][] = [
    ["root, restricted", SandboxPolicy.readOnly(), ROOT, false, [ROOT_WARNING]],
    ["root, restricted, --run-as", SandboxPolicy.readOnly(), ROOT, true, []],
    ["root, nothing restricted", unrestricted, ROOT, false, []],
    ["a user, restricted", SandboxPolicy.readOnly(), {}, false, []],
  ];
  for (const [name, policy, facts, runAs, warnings] of cases) {
    await t.step(name, () => {
      const command = runAs ? { ...COMMAND, runAs: NOBODY } : COMMAND;
      assert.deepEqual(planSandbox(policy, command, kernel(facts), HOST).warnings, warnings);
    });
  }
  assert.match(ROOT_WARNING, /--run-as/);
  assert.doesNotMatch(ROOT_WARNING, /\n/);
});
