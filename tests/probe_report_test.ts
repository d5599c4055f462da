import assert from "node:assert/strict";
import { buildProbeReport, formatProbeReport, type SystemFacts } from "../policy/probe_report.ts";

const base: SystemFacts = {
  kernelRelease: "6.18.0",
  arch: "x86_64",
  landlockAbi: 7,
  seccompActions: [
    "kill_process",
    "kill_thread",
    "trap",
    "errno",
    "user_notif",
    "trace",
    "log",
    "allow",
  ],
  processSeccompMode: 0,
  root: false,
  container: null,
  wsl: false,
};

Deno.test("buildProbeReport() gives the verdict and what is dropped for ABI none, 1, 3, 5, 7", async (t) => {
  const cases: [number, "full" | "partial" | "none", RegExp[]][] = [
    [0, "none", [/not available/]],
    [1, "partial", [/refer, truncate, ioctl_dev/, /TCP/, /signals and abstract UNIX sockets/]],
    [3, "partial", [/ioctl_dev/, /TCP/, /signals/]],
    [5, "partial", [/signals and abstract UNIX sockets are not scoped/]],
    [7, "full", []],
  ];
  for (const [abi, verdict, dropped] of cases) {
    await t.step(`ABI ${abi}`, () => {
      const report = buildProbeReport({
        ...base,
        landlockAbi: abi,
        landlockErrno: abi ? undefined : 38,
      });
      assert.equal(report.verdict, verdict);
      assert.equal(report.dropped.length, dropped.length, report.dropped.join("\n"));
      dropped.forEach((pattern, i) => assert.match(report.dropped[i], pattern));
      assert.equal(report.landlockFeatures.filter((feature) => feature.available).length, abi);
    });
  }
});

Deno.test("buildProbeReport() says why Landlock is missing and what to do", async (t) => {
  const reason = (facts: Partial<SystemFacts>) =>
    buildProbeReport({ ...base, landlockAbi: 0, ...facts }).landlockReason!;
  await t.step(
    "not built in",
    () => assert.match(reason({ landlockErrno: 38 }), /CONFIG_SECURITY_LANDLOCK/),
  );
  await t.step("not in lsm=", () => {
    assert.match(
      reason({ landlockErrno: 95, lsms: ["capability", "apparmor"] }),
      /lsm=.*now: capability,apparmor/,
    );
  });
  await t.step("blocked by a filter", () => {
    assert.match(reason({ landlockErrno: 38, processSeccompMode: 2 }), /seccomp filter.*container/);
    assert.match(reason({ landlockErrno: 1 }), /container's seccomp profile/);
  });
  assert.equal(buildProbeReport(base).landlockReason, null);
});

Deno.test("buildProbeReport() refuses to call it enforced without seccomp filters", () => {
  const none = buildProbeReport({ ...base, seccompActions: undefined });
  assert.equal(none.verdict, "none");
  assert.match(none.seccomp.reason!, /CONFIG_SECCOMP_FILTER/);
  const old = buildProbeReport({ ...base, seccompActions: ["kill_thread", "errno", "allow"] });
  assert.equal(old.verdict, "none");
  assert.match(old.seccomp.reason!, /lacks/);
});

Deno.test("formatProbeReport() prints one line per feature and the verdict", () => {
  const text = formatProbeReport(buildProbeReport({ ...base, landlockAbi: 3 }));
  assert.match(text, /^landlock\s+ABI 3$/m);
  assert.match(text, /truncate \(ABI 3\)\s+yes/);
  assert.match(text, /device ioctls \(ABI 5\)\s+no/);
  assert.match(text, /^verdict\s+partial/m);
});
