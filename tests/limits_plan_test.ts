// Resource limits, the pure part: parsing the options, choosing a mechanism for each limit from
// given facts, and reading how a command ended. No process, file or cgroup is touched.

import assert from "node:assert/strict";
import {
  type ControllerFact,
  DEFAULT_MAX_PROCESSES,
  formatDuration,
  formatLimit,
  formatSize,
  InvalidLimitError,
  LIMIT_NAMES,
  type LimitFacts,
  limitOutcome,
  type LimitPlan,
  parseCount,
  parseDuration,
  parseLimit,
  parseLimits,
  parseSize,
  planLimits,
  validateLimits,
} from "../policy/limits.ts";

const K = 1024;
const M = 1024 * K;
const G = 1024 * M;

const YES: ControllerFact = { usable: true, detail: "usable" };
const ENABLE: ControllerFact = { usable: true, enable: true, detail: "the root cgroup" };
const NO_V2: ControllerFact = { usable: false, detail: "no controller in v2" };
const NO_V1: ControllerFact = { usable: false, detail: "no v1 hierarchy" };

/** cgroup v2 with both controllers delegated to the run's cgroup. */
const V2: LimitFacts = {
  uid: 1000,
  userTasks: 300,
  cgroupV2: { memory: YES, pids: YES },
  cgroupV1: { memory: NO_V1, pids: NO_V1 },
};
/** cgroup v2 at the root cgroup: the controllers must be enabled first. */
const V2_ROOT: LimitFacts = { ...V2, uid: 0, cgroupV2: { memory: ENABLE, pids: ENABLE } };
/** This machine as root: cgroup v2 without controllers, v1 memory and pids. */
const V1_ROOT: LimitFacts = {
  uid: 0,
  cgroupV2: { memory: NO_V2, pids: NO_V2 },
  cgroupV1: { memory: YES, pids: YES },
};
/** This machine as another user: no cgroup can be made. */
const NOTHING_USER: LimitFacts = {
  uid: 1000,
  userTasks: 300,
  cgroupV2: { memory: NO_V2, pids: NO_V2 },
  cgroupV1: { memory: NO_V1, pids: NO_V1 },
};
const NOTHING_ROOT: LimitFacts = { ...NOTHING_USER, uid: 0, userTasks: undefined };

function limit(plan: LimitPlan, name: string) {
  const found = plan.limits.find((limit) => limit.name === name);
  assert.ok(found, `${name} is planned`);
  return found;
}

Deno.test("parseSize() reads binary units in any case, with B or iB", () => {
  const cases: [string, number][] = [
    ["512M", 512 * M],
    ["2G", 2 * G],
    ["2g", 2 * G],
    ["2GB", 2 * G],
    ["2GiB", 2 * G],
    ["2gib", 2 * G],
    ["1T", 1024 * G],
    ["1.5K", 1536],
    ["0.1K", 102],
    ["100", 100],
    ["100B", 100],
    [" 64M ", 64 * M],
    ["0", 0],
  ];
  for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, text);
});

Deno.test("parseSize() refuses what is not a size, naming the option and the value", () => {
  for (const text of ["", "M", "64X", "-1M", "5iB", "1.2.3M", "64 M", "1P", "0x10", "1e3"]) {
    assert.throws(() => parseSize(text, "--max-memory"), (error: unknown) => {
      assert.ok(error instanceof InvalidLimitError, text);
      assert.equal(error.option, "--max-memory");
      assert.equal(error.value, text);
      assert.ok(error.message.startsWith(`Invalid --max-memory: ${JSON.stringify(text)} (`));
      assert.ok(!error.message.endsWith("."), error.message);
      return true;
    });
  }
  assert.throws(() => parseSize("9999999T", "--max-file-size"), /"9999999T" \(too large\)/);
});

Deno.test("parseDuration() reads h, m, s, ms and their combinations; a plain number is seconds", () => {
  const cases: [string, number][] = [
    ["90s", 90000],
    ["1m30s", 90000],
    ["500ms", 500],
    ["90", 90000],
    ["1.5", 1500],
    ["1.5s", 1500],
    ["1h", 3600000],
    ["1h2m3s4ms", 3723004],
    ["2M", 120000],
    ["0.0001s", 1],
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
});

Deno.test("parseDuration() refuses what is not a duration, naming the option and the value", () => {
  for (const text of ["", "s", "1d", "1m30", "ms500", "-1s", "1 m", "1.s"]) {
    assert.throws(
      () => parseDuration(text, "--max-cpu"),
      new RegExp(`^InvalidLimitError: Invalid --max-cpu: ${escape(JSON.stringify(text))} \\(`),
      text,
    );
  }
});

Deno.test("parseCount() takes digits only", () => {
  assert.equal(parseCount("0"), 0);
  assert.equal(parseCount(" 32 "), 32);
  for (const text of ["", "-1", "1.5", "1e3", "0x10", "ten", "9007199254740993"]) {
    assert.throws(() => parseCount(text, "--max-processes"), InvalidLimitError, text);
  }
});

Deno.test("parseLimit() applies each limit's range", async (t) => {
  await t.step("memory: at least 16M, which the sandbox's own start needs", () => {
    assert.equal(parseLimit("memory", "16M"), 16 * M);
    assert.throws(
      () => parseLimit("memory", "512"),
      /^InvalidLimitError: Invalid --max-memory: "512" \(at least 16M: the sandbox starts inside the limit too\)$/,
    );
    assert.throws(() => parseLimit("memory", "1M"), /at least 16M/);
  });
  await t.step("processes: 0 lifts the cap; no more than the kernel's pids", () => {
    assert.equal(parseLimit("processes", "0"), 0);
    assert.equal(parseLimit("processes", "4194304"), 4194304);
    assert.throws(() => parseLimit("processes", "4194305"), /--max-processes: "4194305"/);
  });
  await t.step("cpu: more than nothing", () => {
    assert.equal(parseLimit("cpu", "500ms"), 500);
    assert.throws(
      () => parseLimit("cpu", "0"),
      /^InvalidLimitError: Invalid --max-cpu: "0" \(more than 0\)$/,
    );
    assert.throws(() => parseLimit("cpu", "0ms"), /more than 0/);
  });
  await t.step("file size: 0 allowed (no file may grow)", () => {
    assert.equal(parseLimit("file-size", "0"), 0);
  });
  await t.step("open files: at least 1", () => {
    assert.throws(() => parseLimit("open-files", "0"), /--max-open-files: "0" \(at least 1\)/);
  });
  await t.step("a number from a config file reads as its text", () => {
    assert.equal(parseLimit("memory", 2 * G), 2 * G);
    assert.equal(parseLimit("cpu", 90), 90000);
    assert.throws(() => parseLimit("open-files", 1.5), /"1.5"/);
    assert.throws(() => parseLimit("memory", NaN), /"NaN" \(expected a finite number\)/);
  });
});

Deno.test("parseLimits() reads config keys and refuses unknown ones", () => {
  assert.deepEqual(
    parseLimits({
      "max-memory": "512M",
      "max-processes": 0,
      "max-cpu": "1m30s",
      "max-file-size": "1G",
      "max-open-files": "256",
    }),
    { memoryBytes: 512 * M, processes: 0, cpuMs: 90000, fileSizeBytes: G, openFiles: 256 },
  );
  assert.throws(
    () => parseLimits({ "max-mem": "1G" }),
    /^InvalidLimitError: Invalid max-mem: "1G" \(not a limit; the limits are max-memory, max-processes, max-cpu, max-file-size, max-open-files\)$/,
  );
});

Deno.test("validateLimits() checks a library caller's numbers", () => {
  assert.deepEqual(validateLimits({}), {});
  assert.deepEqual(validateLimits({ processes: 0, fileSizeBytes: 0 }), {
    processes: 0,
    fileSizeBytes: 0,
  });
  assert.throws(() => validateLimits({ memoryBytes: -1 }), /--max-memory: "-1"/);
  assert.throws(() => validateLimits({ cpuMs: Infinity }), /--max-cpu: "Infinity"/);
  assert.throws(
    () => validateLimits({ openFiles: "64" as unknown as number }),
    /--max-open-files: "64" \(expected a number\)/,
  );
});

Deno.test("formatSize(), formatDuration() and formatLimit() write what the parsers read", () => {
  for (const bytes of [0, 1, 1000, K, 1536, 64 * M, 1536 * M, 2 * G, 3 * 1024 * G]) {
    assert.equal(parseSize(formatSize(bytes)), bytes, formatSize(bytes));
  }
  for (const ms of [1, 500, 1000, 1500, 90000, 3723004]) {
    assert.equal(parseDuration(formatDuration(ms)), ms, formatDuration(ms));
  }
  assert.equal(formatSize(0), "0B");
  assert.equal(formatDuration(3723004), "1h2m3s4ms");
  assert.deepEqual(
    LIMIT_NAMES.map((name) => formatLimit(name, 2048)),
    ["2K", "2048", "2s48ms", "2K", "2048"],
  );
});

Deno.test("planLimits() with cgroup v2 controllers puts memory and pids on the run's cgroup", () => {
  const plan = planLimits({ memoryBytes: 512 * M, processes: 256 }, V2);
  assert.deepEqual(plan.cgroups, ["v2"]);
  assert.deepEqual(plan.enableV2, []);
  assert.deepEqual(plan.cgroupWrites, [
    { cgroup: "v2", file: "memory.max", value: String(512 * M) },
    { cgroup: "v2", file: "memory.swap.max", value: "0", ifExists: true },
    { cgroup: "v2", file: "pids.max", value: "256" },
  ]);
  assert.deepEqual(plan.rlimits, []);
  for (const name of ["memory", "processes"]) {
    const planned = limit(plan, name);
    assert.equal(planned.mechanism, "cgroup-v2");
    assert.equal(planned.perProcess, false);
    assert.equal(planned.enforcement, "full");
    assert.equal(planned.isDefault, false);
  }
  assert.equal(plan.fullyEnforced, true);
  assert.deepEqual(plan.unenforceable, []);
});

Deno.test("planLimits() at the root cgroup v2 enables the controllers first", () => {
  const plan = planLimits({ memoryBytes: G }, V2_ROOT);
  assert.deepEqual(plan.enableV2, ["memory", "pids"]);
  assert.deepEqual(plan.cgroups, ["v2"]);
  assert.equal(limit(plan, "processes").value, DEFAULT_MAX_PROCESSES);
});

Deno.test("planLimits() with cgroup v1 only (this machine as root)", () => {
  const plan = planLimits({ memoryBytes: 64 * M, processes: 32 }, V1_ROOT);
  assert.deepEqual(plan.cgroups, ["v1-memory", "v1-pids"]);
  assert.deepEqual(plan.cgroupWrites, [
    { cgroup: "v1-memory", file: "memory.limit_in_bytes", value: String(64 * M) },
    {
      cgroup: "v1-memory",
      file: "memory.memsw.limit_in_bytes",
      value: String(64 * M),
      ifExists: true,
    },
    { cgroup: "v1-memory", file: "memory.swappiness", value: "0", ifExists: true },
    { cgroup: "v1-pids", file: "pids.max", value: "32" },
  ]);
  assert.equal(limit(plan, "memory").mechanism, "cgroup-v1");
  assert.equal(limit(plan, "processes").mechanism, "cgroup-v1");
  assert.ok(limit(plan, "memory").notes.includes("Not with cgroup v2: no controller in v2"));
  assert.equal(plan.fullyEnforced, true);
});

Deno.test("planLimits() mixes: pids on cgroup v2, memory on cgroup v1", () => {
  const plan = planLimits({ memoryBytes: G }, {
    ...V1_ROOT,
    cgroupV2: { memory: NO_V2, pids: YES },
  });
  assert.deepEqual(plan.cgroups, ["v1-memory", "v2"]);
  assert.equal(limit(plan, "memory").mechanism, "cgroup-v1");
  assert.equal(limit(plan, "processes").mechanism, "cgroup-v2");
});

Deno.test("planLimits() without cgroups (another user here) falls back to per-process rlimits", () => {
  const plan = planLimits({ memoryBytes: 64 * M, processes: 32 }, NOTHING_USER);
  assert.deepEqual(plan.cgroups, []);
  assert.deepEqual(plan.cgroupWrites, []);
  assert.deepEqual(plan.rlimits, [
    { resource: "RLIMIT_AS", soft: 64 * M, hard: 64 * M },
    { resource: "RLIMIT_NPROC", soft: 332, hard: 332 },
  ]);
  const memory = limit(plan, "memory");
  assert.equal(memory.mechanism, "rlimit");
  assert.equal(memory.perProcess, true);
  assert.equal(memory.enforcement, "partial");
  assert.ok(memory.notes.some((note) => note.includes("address space reserved")));
  assert.ok(memory.notes.includes("Not with cgroup v1: no v1 hierarchy"));
  const processes = limit(plan, "processes");
  assert.equal(processes.mechanism, "rlimit");
  assert.equal(processes.perProcess, true);
  assert.ok(processes.notes[0].includes("counts every task of uid 1000"), processes.notes[0]);
  assert.equal(plan.fullyEnforced, false);
  assert.deepEqual(plan.unenforceable, []);
});

Deno.test("planLimits() sets the default cap as RLIMIT_NPROC above the user's tasks, or not at all", () => {
  const counted = planLimits({}, NOTHING_USER);
  assert.deepEqual(counted.rlimits, [
    {
      resource: "RLIMIT_NPROC",
      soft: 300 + DEFAULT_MAX_PROCESSES,
      hard: 300 + DEFAULT_MAX_PROCESSES,
    },
  ]);
  assert.equal(limit(counted, "processes").isDefault, true);
  // The default is best effort: it does not decide --require-full.
  assert.equal(counted.fullyEnforced, true);

  const unknown = planLimits({}, { ...NOTHING_USER, userTasks: undefined });
  assert.deepEqual(unknown.rlimits, []);
  assert.equal(limit(unknown, "processes").mechanism, null);
  assert.deepEqual(unknown.unenforceable, []);
  // An explicit cap is set as given when the user's count is unknown.
  const explicit = planLimits({ processes: 32 }, { ...NOTHING_USER, userTasks: undefined });
  assert.deepEqual(explicit.rlimits, [{ resource: "RLIMIT_NPROC", soft: 32, hard: 32 }]);
});

Deno.test("planLimits() as root without cgroups cannot cap processes, and says so", () => {
  const asked = planLimits({ processes: 32 }, NOTHING_ROOT);
  const processes = limit(asked, "processes");
  assert.equal(processes.mechanism, null);
  assert.equal(processes.enforcement, "none");
  assert.match(processes.notes[0], /RLIMIT_NPROC, the only other means, does not apply to root/);
  assert.deepEqual(asked.unenforceable, ["processes"]);
  assert.equal(asked.fullyEnforced, false);

  const byDefault = planLimits({}, NOTHING_ROOT);
  assert.deepEqual(byDefault.unenforceable, []);
  assert.equal(limit(byDefault, "processes").enforcement, "none");
});

Deno.test("planLimits() with --max-processes 0 has no process cap", () => {
  const plan = planLimits({ processes: 0 }, V1_ROOT);
  assert.deepEqual(plan.limits, []);
  assert.deepEqual(plan.cgroups, []);
});

Deno.test("planLimits() sets CPU time, file size and open files as rlimits on every system", () => {
  for (const facts of [V2, V1_ROOT, NOTHING_USER, NOTHING_ROOT]) {
    const plan = planLimits(
      { processes: 0, cpuMs: 90000, fileSizeBytes: M, openFiles: 256 },
      facts,
    );
    assert.deepEqual(plan.rlimits, [
      { resource: "RLIMIT_CPU", soft: 90, hard: 91 },
      { resource: "RLIMIT_FSIZE", soft: M, hard: M },
      { resource: "RLIMIT_NOFILE", soft: 256, hard: 256 },
    ]);
    assert.deepEqual(plan.cgroups, []);
    assert.deepEqual(
      plan.limits.map((planned) => [planned.name, planned.mechanism, planned.perProcess]),
      [["cpu", "rlimit", true], ["file-size", "rlimit", false], ["open-files", "rlimit", false]],
    );
    assert.equal(plan.fullyEnforced, false, "CPU time is per process");
  }
});

Deno.test("planLimits() keeps CPU time exact; the child rounds up what it adds", () => {
  const plan = planLimits({ cpuMs: 500 }, V1_ROOT);
  assert.deepEqual(plan.rlimits, [{ resource: "RLIMIT_CPU", soft: 0.5, hard: 1.5 }]);
  assert.ok(limit(plan, "cpu").notes.some((note) => note.includes("less than a second more")));
  assert.equal(limit(plan, "cpu").shown, "500ms");
});

Deno.test("planLimits() counts nothing as full for a command that can undo its limits", () => {
  const plan = planLimits({ memoryBytes: G, fileSizeBytes: M }, {
    ...V1_ROOT,
    privilegedCommand: true,
  });
  assert.deepEqual(plan.limits.map((planned) => planned.enforcement), [
    "partial",
    "partial",
    "partial",
  ]);
  assert.ok(limit(plan, "memory").notes.some((note) => note.includes("CAP_SYS_RESOURCE")));
  assert.equal(plan.fullyEnforced, false);
});

Deno.test("planLimits() refuses out-of-range limits and makes a plan that survives JSON", () => {
  assert.throws(() => planLimits({ memoryBytes: 100 }, V2), InvalidLimitError);
  const plan = planLimits({ memoryBytes: G, cpuMs: 1500, openFiles: 64 }, NOTHING_USER);
  assert.deepEqual(JSON.parse(JSON.stringify(plan)), plan);
});

Deno.test("limitOutcome() names the limit from the kernel's evidence", async (t) => {
  const v1 = planLimits(
    { memoryBytes: 64 * M, processes: 32, cpuMs: 1000, fileSizeBytes: M },
    V1_ROOT,
  );
  const v2 = planLimits({ memoryBytes: 64 * M }, V2);

  await t.step("the OOM killer of a cgroup ended the command", () => {
    assert.deepEqual(limitOutcome(v1, { code: 137, signal: "SIGKILL" }, { oomKills: 1 }), {
      limitExceeded: "memory",
      message: "llmx-sandbox: the command exceeded --max-memory 64M " +
        "(cgroup v1 memory: killed by the kernel's OOM killer)",
    });
  });
  await t.step("the OOM killer ended processes of the run, not the command", () => {
    assert.equal(
      limitOutcome(v2, { code: 1, signal: null }, { oomKills: 2 }).message,
      "llmx-sandbox: the command exceeded --max-memory 64M " +
        "(cgroup v2 memory: the kernel's OOM killer ended 2 processes of the run)",
    );
  });
  await t.step("SIGXCPU, by name or by number; never an exit code of 152", () => {
    for (const end of [{ code: 152, signal: "SIGXCPU" }, { code: 152, signal: 24 }]) {
      assert.deepEqual(limitOutcome(v1, end, {}), {
        limitExceeded: "cpu",
        message: "llmx-sandbox: the command exceeded --max-cpu 1s (RLIMIT_CPU: killed by SIGXCPU)",
      });
    }
    // A SIGXCPU the command raised itself, where the run's CPU time is known to be short of
    // the limit, is not the limit's.
    assert.deepEqual(limitOutcome(v1, { code: 152, signal: "SIGXCPU" }, { cpuUsageMs: 40 }), {
      limitExceeded: null,
      message: null,
    });
    assert.equal(
      limitOutcome(v1, { code: 152, signal: "SIGXCPU" }, { cpuUsageMs: 1010 }).limitExceeded,
      "cpu",
    );
    // A program may exit 152 by itself, and a shell passes a child's signal on that way.
    assert.deepEqual(limitOutcome(v1, { code: 152, signal: null }, {}), {
      limitExceeded: null,
      message: null,
    });
  });
  await t.step("SIGXFSZ", () => {
    assert.equal(
      limitOutcome(v1, { code: 153, signal: "SIGXFSZ" }, {}).message,
      "llmx-sandbox: the command exceeded --max-file-size 1M (RLIMIT_FSIZE: killed by SIGXFSZ)",
    );
  });
  await t.step("refused forks, at an explicit cap and at the default one", () => {
    assert.equal(
      limitOutcome(v1, { code: 2, signal: null }, { forksRefused: 3 }).message,
      "llmx-sandbox: the command exceeded --max-processes 32 (cgroup v1 pids: 3 forks refused)",
    );
    const byDefault = planLimits({}, V2);
    assert.deepEqual(limitOutcome(byDefault, { code: 0, signal: null }, { forksRefused: 1 }), {
      limitExceeded: "processes",
      message: "llmx-sandbox: the command reached the default cap of 4096 tasks " +
        "(cgroup v2 pids: 1 fork refused; --max-processes raises it, 0 lifts it)",
    });
  });
  await t.step("nothing: a plain end, a signal or counter no limit of the plan explains", () => {
    const none = { limitExceeded: null, message: null };
    assert.deepEqual(
      limitOutcome(v1, { code: 0, signal: null }, { oomKills: 0, forksRefused: 0 }),
      none,
    );
    assert.deepEqual(limitOutcome(v1, { code: 137, signal: "SIGKILL" }, {}), none);
    assert.deepEqual(limitOutcome(v2, { code: 152, signal: "SIGXCPU" }, {}), none);
    // An rlimit leaves no counter: RLIMIT_AS and RLIMIT_NPROC are never reported.
    const rlimits = planLimits({ memoryBytes: 64 * M, processes: 32, openFiles: 8 }, NOTHING_USER);
    assert.deepEqual(
      limitOutcome(rlimits, { code: 137, signal: "SIGKILL" }, { oomKills: 1, forksRefused: 1 }),
      none,
    );
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
