// What is enforced, said honestly: --probe, --explain, strictness, hints, and older kernels
// (their plans applied here; "no Landlock" simulated with a seccomp filter answering ENOSYS).

import assert from "node:assert/strict";
import { MAIN, run, runCli, skipReason, tempDir, which } from "./_helpers.ts";
import { SandboxPolicy } from "../policy/sandbox_policy.ts";
import { planSandbox } from "../policy/plan.ts";
import { probeKernel } from "../exec/kernel.ts";
import { spawnPlan } from "../exec/spawn.ts";
import { explainSandbox } from "../exec/sandboxed.ts";
import { defaultConfigPath } from "../cli/config.ts";

const kernel = probeKernel();

Deno.test("--probe --json reports this kernel's Landlock ABI and every feature", async () => {
  const out = await runCli(["--probe", "--json"]);
  const report = JSON.parse(out.stdout);
  assert.equal(typeof report.landlockAbi, "number");
  assert.equal(report.landlockAbi, kernel.landlockAbi);
  assert.equal(report.arch, Deno.build.arch);
  assert.equal(report.root, Deno.uid() === 0);
  assert.equal(report.seccomp.available, true);
  assert.deepEqual(
    report.landlockFeatures.map((feature: { key: string }) => feature.key),
    ["filesystem", "refer", "truncate", "tcp", "ioctlDev", "scopes", "auditLogging"],
  );
  for (const feature of report.landlockFeatures) {
    assert.equal(feature.available, kernel.landlockAbi >= feature.abi, feature.key);
  }
  const expected = kernel.landlockAbi >= 6 ? 0 : kernel.landlockAbi > 0 ? 1 : 125;
  assert.equal(out.code, expected);
  const table = await runCli(["--probe"]);
  assert.equal(table.code, expected);
  assert.match(table.stdout, /^kernel\s+\S+/m);
  assert.match(table.stdout, /^verdict\s+(full|partial|none)/m);
});

Deno.test("--explain prints the plan the child receives, and runs nothing", async () => {
  const dir = tempDir();
  try {
    const secret = `secret-${crypto.randomUUID()}`;
    // The command tries to read its supervisor's descriptors (where the plan and the report
    // channel live), then prints the names of the variables it got.
    const command = [
      "sh",
      "-c",
      'cat /proc/$PPID/fd/* 2>/dev/null; echo "fds=$?"; env; touch marker',
    ];
    const args = [
      "-s",
      "disk-full-read-access",
      "-s",
      `disk-write-folder=${dir}`,
      "--cwd",
      dir,
      "--env",
      "TOKEN",
      "--",
      ...command,
    ];
    // The caller's environment plus a token (which looks like a credential: passed by name).
    const env = { TOKEN: secret };
    const explained = await runCli(["--explain", ...args], { env });
    assert.equal(explained.code, 0, explained.stderr);
    assert.throws(() => Deno.statSync(`${dir}/marker`), Deno.errors.NotFound);
    const plan = JSON.parse(explained.stdout);
    assert.ok(plan.env.every((entry: string) => entry.endsWith("=<hidden>")));
    assert.doesNotMatch(explained.stdout, new RegExp(secret));
    // The very plan the library makes (and the supervisor seals for its child), values aside.
    Deno.env.set("TOKEN", secret);
    const made = explainSandbox(
      {
        command,
        cwd: dir,
        envEntries: ["TOKEN"],
        // In place, the CLI keeps the caller's controlling terminal (none here: no tty).
        terminal: { devices: [], controlling: true },
      },
      ["disk-full-read-access", `disk-write-folder=${dir}`],
    );
    Deno.env.delete("TOKEN");
    const hide = (entries: string[]) => entries.map((entry) => entry.replace(/=.*$/s, "=<hidden>"));
    // The CLI protects its config files too; the rest is the library's plan. (The per-user
    // process cap counts the user's tasks when planned, which vary from one plan to the next.)
    assert.deepEqual(
      { ...made, env: hide(made.env), protected: plan.protected, limits: plan.limits },
      plan,
    );
    assert.deepEqual(
      made.limits.limits.map((limit) => [limit.name, limit.mechanism, limit.value]),
      plan.limits.limits.map((limit: { name: string; mechanism: string; value: number }) => [
        limit.name,
        limit.mechanism,
        limit.value,
      ]),
    );
    assert.deepEqual(
      plan.protected.filter((place: { what: string }) =>
        !made.protected.some((p) => p.what === place.what)
      ),
      [{ what: "the config file", path: defaultConfigPath({ ...Deno.env.toObject(), ...env }) }],
    );

    const ran = await runCli(["--json", "--timeout", "30000", ...args], { env });
    const result = JSON.parse(ran.stdout);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.ok(Deno.statSync(`${dir}/marker`).isFile, "positive control: the command ran");
    const [fds, ...variables] = result.stdout.trimEnd().split("\n");
    assert.equal(fds, "fds=1", "the supervisor's descriptors are out of the command's reach");
    assert.ok(variables.includes(`TOKEN=${secret}`));
    const names = (entries: string[]) =>
      entries.map((entry) => entry.slice(0, entry.indexOf("="))).filter((name) => name !== "PWD");
    assert.deepEqual(names(variables).sort(), names(plan.env).sort());
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** Runs a plan made for an older ABI on this kernel; returns the exit code. */
async function runPlanFor(abi: number, command: string[], root: string): Promise<number> {
  const plan = planSandbox(
    SandboxPolicy.readOnlyWithWritableRoots([root]),
    { argv: command, cwd: root, env: { PATH: "/usr/bin:/bin" } },
    { ...kernel, landlockAbi: abi },
  );
  const status = await spawnPlan(plan, { stdout: "null", stderr: "null" }).status;
  return status.exitCode;
}

Deno.test({
  name: skipReason(
    "plans for older ABIs drop exactly what they say, applied on this kernel",
    kernel.landlockAbi >= 3 ? undefined : "needs Landlock ABI 3 here",
  ),
  ignore: kernel.landlockAbi < 3,
}, async (t) => {
  const dir = tempDir();
  const root = `${dir}/root`;
  Deno.mkdirSync(root);
  const outside = `${dir}/outside.txt`;
  try {
    for (const abi of [1, 2, 3, 5]) {
      await t.step(`ABI ${abi}`, async () => {
        const plan = planSandbox(
          SandboxPolicy.readOnlyWithWritableRoots([root]),
          { argv: ["true"], cwd: root, env: {} },
          { ...kernel, landlockAbi: abi },
        );
        const truncateDropped = plan.landlock.dropped.some((line) => line.includes("truncate"));
        assert.equal(truncateDropped, abi < 3);
        assert.equal(plan.landlock.enforcement, "partial");
        Deno.writeTextFileSync(outside, "keep");
        // Writing outside is refused on every ABI...
        assert.notEqual(await runPlanFor(abi, ["sh", "-c", `echo x >> ${outside}`], root), 0);
        // ...truncating is refused only from ABI 3, as the plan said.
        // truncate(2) on a path, without opening the file for writing (perl's truncate does that).
        const truncated = await runPlanFor(abi, [
          "perl",
          "-e",
          'truncate($ARGV[0], 0) or die "$!"',
          outside,
        ], root);
        assert.equal(truncated === 0, abi < 3, `truncate exit ${truncated}`);
        assert.equal(Deno.readTextFileSync(outside), abi < 3 ? "" : "keep");
      });
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

/** stderr without the CLI's warnings (as root, the one about --run-as), which precede the command. */
const withoutWarnings = (stderr: string) =>
  stderr.split("\n").filter((line) => !line.startsWith("llmx-sandbox: warning: ")).join("\n");

Deno.test("a failed command gets one hint line after its own stderr in supervised mode", async (t) => {
  const dir = tempDir();
  try {
    await t.step("a denied write names the folder to allow", async () => {
      const out = await runCli(["--timeout", "30000", "--", "sh", "-c", `echo x > ${dir}/f`]);
      assert.notEqual(out.code, 0);
      const lines = withoutWarnings(out.stderr).trimEnd().split("\n");
      assert.match(lines[0], /Permission denied/);
      assert.equal(lines.length, 2, out.stderr);
      assert.equal(
        lines[1],
        `llmx-sandbox: hint: Landlock may have refused writing ${dir}/f (${dir}/f is a path ` +
          `from the command's output), outside the writable roots; to allow it, add -s ` +
          `disk-write-folder=${dir}`,
      );
      assert.equal(out.stdout, "", "never on stdout");
    });
    await t.step("--quiet drops it", async () => {
      const out = await runCli([
        "--quiet",
        "--timeout",
        "30000",
        "--",
        "sh",
        "-c",
        `echo x > ${dir}/f`,
      ]);
      assert.doesNotMatch(out.stderr, /hint/);
    });
    await t.step("a success or an unrelated failure gets none", async () => {
      const ok = await runCli(["--timeout", "30000", "--", "sh", "-c", "echo fine >&2"]);
      assert.equal(withoutWarnings(ok.stderr), "fine\n");
      const other = await runCli([
        "--timeout",
        "30000",
        "--",
        "sh",
        "-c",
        "echo broken >&2; exit 3",
      ]);
      assert.equal(withoutWarnings(other.stderr), "broken\n");
    });
    await t.step("in-place mode cannot add one", async () => {
      const out = await runCli(["--", "sh", "-c", `echo x > ${dir}/f`]);
      assert.doesNotMatch(out.stderr, /hint/);
    });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

const noGcc = which("gcc") ? undefined : "gcc not installed";

Deno.test({
  name: skipReason(
    "without Landlock (ENOSYS), the CLI refuses with 125 and says what to do; --require-full",
    noGcc,
  ),
  ignore: noGcc !== undefined,
}, async () => {
  const dir = tempDir();
  try {
    // A seccomp filter that answers ENOSYS for landlock_create_ruleset/add_rule/restrict_self
    // (444-446 on x86_64 and aarch64), as a kernel without Landlock or a container would.
    Deno.writeTextFileSync(
      `${dir}/no_landlock.c`,
      `#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
int main(int argc, char **argv) {
  struct sock_filter filter[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 444, 0, 2),
    BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 446, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { sizeof(filter) / sizeof(filter[0]), filter };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
    perror("seccomp");
    return 99;
  }
  execvp(argv[1], argv + 1);
  perror("execvp");
  return 98;
}
`,
    );
    const built = await run("gcc", ["-o", `${dir}/no_landlock`, `${dir}/no_landlock.c`]);
    assert.equal(built.code, 0, built.stderr);
    const cli = (args: string[]) =>
      run(`${dir}/no_landlock`, [Deno.execPath(), "run", "-A", "--quiet", MAIN, ...args]);
    const marker = `${dir}/marker`;

    // Positive control: the same CLI without the filter runs the command.
    const direct = await runCli(["-s", `disk-write-folder=${dir}`, "--", "touch", marker]);
    assert.equal(direct.code, 0, direct.stderr);
    Deno.removeSync(marker);

    const refused = await cli(["-s", `disk-write-folder=${dir}`, "--", "touch", marker]);
    assert.equal(refused.code, 125);
    assert.match(refused.stderr, /Landlock/);
    assert.match(refused.stderr, /lsm=|--probe/);
    assert.throws(() => Deno.statSync(marker), Deno.errors.NotFound);

    const probe = await cli(["--probe", "--json"]);
    assert.equal(probe.code, 125);
    const report = JSON.parse(probe.stdout);
    assert.equal(report.landlockAbi, 0);
    assert.equal(report.verdict, "none");
    assert.match(report.landlockReason, /ENOSYS/);

    // Writes and the network unrestricted, UNIX sockets restricted: seccomp alone can do it;
    // it runs, with a warning (what only Landlock hides stays readable).
    const network = await cli([
      "-s",
      "disk-full-write-access",
      "-s",
      "network-full-access",
      "--",
      "touch",
      marker,
    ]);
    assert.equal(network.code, 0, network.stderr);
    assert.match(network.stderr, /warning: partially enforced/);
    Deno.removeSync(marker);
    // ...unless full enforcement is required.
    const strict = await cli([
      "--require-full",
      "-s",
      "disk-full-write-access",
      "-s",
      "network-full-access",
      "--",
      "touch",
      marker,
    ]);
    assert.equal(strict.code, 125);
    assert.match(strict.stderr, /full enforcement was required/);
    assert.throws(() => Deno.statSync(marker), Deno.errors.NotFound);
    const quiet = await cli([
      "--quiet",
      "-s",
      "disk-full-write-access",
      "-s",
      "network-full-access",
      "--",
      "true",
    ]);
    assert.equal(quiet.stderr, "");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
