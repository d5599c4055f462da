/**
 * Resource limits: the parsing of `--max-memory` and friends, the choice of a mechanism for each
 * limit on a given system, and the reading of how a command ended. Pure: the system's facts and
 * the cgroup counters are given (exec/limits.ts gathers them and carries the plan out).
 *
 * Mechanisms, in order of preference: cgroup v2 controllers on the run's cgroup, cgroup v1
 * controllers on a per-run cgroup, then per-process rlimits. CPU time, file size and open files
 * are always rlimits: no cgroup counts them (`cpu.max` is a rate, not an amount of CPU time).
 *
 * @module
 */

/** A limit, by the name the outcome and the messages use. */
export type LimitName = "memory" | "processes" | "cpu" | "file-size" | "open-files";

/** Every limit, in the order plans list them. */
export const LIMIT_NAMES: readonly LimitName[] = [
  "memory",
  "processes",
  "cpu",
  "file-size",
  "open-files",
];

/** The command-line option of each limit; the config key is the same without the dashes. */
export const LIMIT_OPTIONS: Readonly<Record<LimitName, string>> = {
  memory: "--max-memory",
  processes: "--max-processes",
  cpu: "--max-cpu",
  "file-size": "--max-file-size",
  "open-files": "--max-open-files",
};

/**
 * The process cap that applies when none is given: 4096 tasks (processes and threads; the
 * kernel counts both) for the whole run. A parallel build on 64 cores stays far below it
 * (`make -j64`: about 4 tasks a job; jest's 63 workers: about 12 threads each), while a fork
 * bomb stops at an eighth of the smallest default `pid_max` (32768). `--max-processes 0`
 * lifts it.
 */
export const DEFAULT_MAX_PROCESSES = 4096;

/** The highest pid the kernel can hand out (`PID_MAX_LIMIT`): a larger cap means nothing. */
const MAX_TASKS = 4194304;
/** The smallest memory limit: a smaller one is almost surely bytes meant as megabytes. */
const MIN_MEMORY_BYTES = 16 * 1024 * 1024;

/**
 * A limit's value that cannot be used; the message names the option and the value, so that
 * the CLI prints it as one line (and exits 2).
 *
 * @example Catching a bad value
 * ```ts
 * import { InvalidLimitError, parseLimit } from "./limits.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => parseLimit("memory", "64X"), InvalidLimitError);
 * ```
 */
export class InvalidLimitError extends Error {
  /** The option, e.g. `--max-memory`. */
  readonly option: string;
  /** The value as it was given. */
  readonly value: string;

  /**
   * Makes the error.
   * @param option The option, e.g. `--max-memory`.
   * @param value The value as it was given.
   * @param expected What a good value looks like.
   */
  constructor(option: string, value: string, expected: string) {
    super(`Invalid ${option}: ${JSON.stringify(value)} (${expected})`);
    this.name = "InvalidLimitError";
    this.option = option;
    this.value = value;
  }
}

const SIZE_EXPECTED = "expected a size like 512M or 2G; K, M, G, T are powers of 1024, " +
  "a plain number is bytes";
const DURATION_EXPECTED = "expected a duration like 90s, 1m30s or 500ms (h, m, s, ms); " +
  "a plain number is seconds";
const COUNT_EXPECTED = "expected a whole number";

/**
 * Parses a size: a number with an optional `K`, `M`, `G` or `T` (powers of 1024) and an optional
 * `B` or `iB`, in any case; a plain number is bytes. A fraction is rounded down to a byte.
 *
 * @example Sizes
 * ```ts
 * import { parseSize } from "./limits.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseSize("512M"), 512 * 1024 * 1024);
 * assert.equal(parseSize("2GiB"), 2 * 1024 ** 3);
 * assert.equal(parseSize("1.5k"), 1536);
 * assert.equal(parseSize("100"), 100);
 * ```
 *
 * @param text The size as typed.
 * @param option The option it is for, named in the error.
 * @returns The size in bytes.
 * @throws {InvalidLimitError} When it is not a size, or larger than 2^53 bytes.
 */
export function parseSize(text: string, option = "size"): number {
  const match = /^(\d+(?:\.\d+)?)([kmgt]?)(i?b)?$/i.exec(text.trim());
  // "iB" needs a unit before it: "5iB" is a typo, not a size.
  if (!match || (match[2] === "" && match[3]?.length === 2)) {
    throw new InvalidLimitError(option, text, SIZE_EXPECTED);
  }
  const power = " kmgt".indexOf(match[2].toLowerCase() || " ");
  const bytes = Math.floor(Number(match[1]) * 1024 ** power);
  if (!Number.isSafeInteger(bytes)) throw new InvalidLimitError(option, text, "too large");
  return bytes;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { h: 3600000, m: 60000, s: 1000, ms: 1 };

/**
 * Parses a duration: amounts with units `h`, `m`, `s` and `ms`, one after another (`1m30s`,
 * `1h5m`, `1.5s`); a plain number is seconds. A fraction of a millisecond is rounded up.
 *
 * @example Durations
 * ```ts
 * import { parseDuration } from "./limits.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseDuration("90s"), 90000);
 * assert.equal(parseDuration("1m30s"), 90000);
 * assert.equal(parseDuration("500ms"), 500);
 * assert.equal(parseDuration("90"), 90000);
 * ```
 *
 * @param text The duration as typed.
 * @param option The option it is for, named in the error.
 * @returns The duration in milliseconds.
 * @throws {InvalidLimitError} When it is not a duration, or too long to count in milliseconds.
 */
export function parseDuration(text: string, option = "duration"): number {
  const trimmed = text.trim();
  let ms: number;
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) {
    ms = Number(trimmed) * 1000;
  } else if (/^(?:\d+(?:\.\d+)?(?:ms|h|m|s))+$/i.test(trimmed)) {
    ms = 0;
    for (const [, amount, unit] of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/gi)) {
      ms += Number(amount) * DURATION_UNITS[unit.toLowerCase()];
    }
  } else {
    throw new InvalidLimitError(option, text, DURATION_EXPECTED);
  }
  const rounded = Math.ceil(ms);
  if (!Number.isSafeInteger(rounded)) throw new InvalidLimitError(option, text, "too long");
  return rounded;
}

/**
 * Parses a count: a whole number, digits only.
 *
 * @example Counts
 * ```ts
 * import { parseCount } from "./limits.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseCount("256"), 256);
 * assert.throws(() => parseCount("-1", "--max-open-files"), /--max-open-files: "-1"/);
 * ```
 *
 * @param text The count as typed.
 * @param option The option it is for, named in the error.
 * @returns The count.
 * @throws {InvalidLimitError} When it is not a whole number, or larger than 2^53.
 */
export function parseCount(text: string, option = "count"): number {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) throw new InvalidLimitError(option, text, COUNT_EXPECTED);
  const count = Number(trimmed);
  if (!Number.isSafeInteger(count)) throw new InvalidLimitError(option, text, "too large");
  return count;
}

/**
 * The limits a run asks for. All optional; one that is absent is not limited, except the
 * process cap, which is `DEFAULT_MAX_PROCESSES` unless set (0 lifts it).
 */
export interface ResourceLimits {
  /**
   * Memory in bytes (at least 16 MiB): for the whole run, swap included, with a cgroup; for each
   * process's address space with the `RLIMIT_AS` fallback.
   */
  memoryBytes?: number;
  /**
   * Tasks (processes and threads) of the whole run with a cgroup; with the `RLIMIT_NPROC`
   * fallback, of the command's user. 0 lifts the cap.
   * @default {DEFAULT_MAX_PROCESSES}
   */
  processes?: number;
  /**
   * CPU time in milliseconds, of each process (`RLIMIT_CPU`). The kernel counts this limit in
   * whole seconds of the process's time: a command gets at least this much, less than a second
   * more.
   */
  cpuMs?: number;
  /** The largest file any process of the run may write, in bytes (`RLIMIT_FSIZE`); 0 allowed. */
  fileSizeBytes?: number;
  /** Descriptors each process may have open (`RLIMIT_NOFILE`), at least 1. */
  openFiles?: number;
}

const LIMIT_KEYS: Readonly<Record<LimitName, keyof ResourceLimits>> = {
  memory: "memoryBytes",
  processes: "processes",
  cpu: "cpuMs",
  "file-size": "fileSizeBytes",
  "open-files": "openFiles",
};

/** The smallest and largest value of each limit, in its unit, and what to say when outside. */
const RANGES: Readonly<Record<LimitName, { min: number; max: number; hint: string }>> = {
  memory: {
    min: MIN_MEMORY_BYTES,
    max: Number.MAX_SAFE_INTEGER,
    hint: "at least 16M: the sandbox starts inside the limit too",
  },
  processes: { min: 0, max: MAX_TASKS, hint: `0 (no cap) to ${MAX_TASKS}` },
  cpu: { min: 1, max: Number.MAX_SAFE_INTEGER, hint: "more than 0" },
  "file-size": { min: 0, max: Number.MAX_SAFE_INTEGER, hint: "0 or more" },
  "open-files": { min: 1, max: Number.MAX_SAFE_INTEGER, hint: "at least 1" },
};

function checkRange(name: LimitName, value: number, shown: string): number {
  const { min, max, hint } = RANGES[name];
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidLimitError(LIMIT_OPTIONS[name], shown, hint);
  }
  return value;
}

/**
 * Parses one limit as the CLI or a config file gives it. A number is read as its decimal text:
 * bytes for sizes, seconds for the CPU time.
 *
 * @example The CLI's options
 * ```ts
 * import { parseLimit } from "./limits.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseLimit("memory", "64M"), 64 * 1024 * 1024);
 * assert.equal(parseLimit("cpu", "1m30s"), 90000);
 * assert.equal(parseLimit("processes", 0), 0);
 * assert.throws(() => parseLimit("memory", "512"), /at least 16M/);
 * ```
 *
 * @param name The limit.
 * @param value The value as typed, or a number from a config file.
 * @returns The value in the unit of `ResourceLimits` (bytes, tasks, milliseconds, descriptors).
 * @throws {InvalidLimitError} When the value is malformed or out of range.
 */
export function parseLimit(name: LimitName, value: string | number): number {
  const option = LIMIT_OPTIONS[name];
  const text = String(value);
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new InvalidLimitError(option, text, "expected a finite number");
  }
  const parsed = name === "memory" || name === "file-size"
    ? parseSize(text, option)
    : name === "cpu"
    ? parseDuration(text, option)
    : parseCount(text, option);
  return checkRange(name, parsed, text);
}

/**
 * Parses every limit given by option name (`max-memory`, …, as in a config file).
 *
 * @example From a config file
 * ```ts
 * import { parseLimits } from "./limits.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseLimits({ "max-memory": "2G", "max-open-files": 1024 }), {
 *   memoryBytes: 2 * 1024 ** 3,
 *   openFiles: 1024,
 * });
 * ```
 *
 * @param values Values by option name without the dashes; absent ones are not set.
 * @returns The limits.
 * @throws {InvalidLimitError} When a value is malformed or out of range, or a key is unknown.
 */
export function parseLimits(values: Readonly<Record<string, string | number>>): ResourceLimits {
  const limits: ResourceLimits = {};
  for (const [key, value] of Object.entries(values)) {
    const name = LIMIT_NAMES.find((limit) => LIMIT_OPTIONS[limit] === `--${key}`);
    if (name === undefined) {
      throw new InvalidLimitError(
        key,
        String(value),
        `not a limit; the limits are ${optionList()}`,
      );
    }
    limits[LIMIT_KEYS[name]] = parseLimit(name, value);
  }
  return limits;
}

function optionList(): string {
  return LIMIT_NAMES.map((name) => LIMIT_OPTIONS[name].slice(2)).join(", ");
}

/**
 * Checks limits given as numbers (the library's `limits` option) and drops absent ones.
 *
 * @example A library caller's limits
 * ```ts
 * import { validateLimits } from "./limits.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(validateLimits({ memoryBytes: 2 ** 30, cpuMs: undefined }), {
 *   memoryBytes: 2 ** 30,
 * });
 * assert.throws(() => validateLimits({ openFiles: 1.5 }), /--max-open-files: "1.5"/);
 * ```
 *
 * @param limits The limits.
 * @returns A copy with only the limits that are set.
 * @throws {InvalidLimitError} When a value is not a whole number in its range.
 */
export function validateLimits(limits: Readonly<ResourceLimits>): ResourceLimits {
  const valid: ResourceLimits = {};
  for (const name of LIMIT_NAMES) {
    const key = LIMIT_KEYS[name];
    const value = limits[key];
    if (value === undefined) continue;
    if (typeof value !== "number") {
      throw new InvalidLimitError(LIMIT_OPTIONS[name], String(value), "expected a number");
    }
    valid[key] = checkRange(name, value, String(value));
  }
  return valid;
}

/**
 * Writes a size the way `parseSize` reads it, in the largest unit that divides it.
 *
 * @example
 * ```ts
 * import { formatSize } from "./limits.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatSize(64 * 1024 * 1024), "64M");
 * assert.equal(formatSize(1536 * 1024 * 1024), "1536M");
 * assert.equal(formatSize(1000), "1000B");
 * ```
 *
 * @param bytes The size.
 * @returns E.g. `64M`.
 */
export function formatSize(bytes: number): string {
  for (const [unit, power] of [["T", 4], ["G", 3], ["M", 2], ["K", 1]] as const) {
    const size = 1024 ** power;
    if (bytes !== 0 && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}

/**
 * Writes a duration the way `parseDuration` reads it.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./limits.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatDuration(90000), "1m30s");
 * assert.equal(formatDuration(500), "500ms");
 * ```
 *
 * @param ms The duration in milliseconds.
 * @returns E.g. `1m30s`.
 */
export function formatDuration(ms: number): string {
  let rest = ms;
  let text = "";
  for (const [unit, size] of Object.entries(DURATION_UNITS)) {
    const amount = Math.floor(rest / size);
    if (amount > 0) text += `${amount}${unit}`;
    rest -= amount * size;
  }
  return text || "0ms";
}

/**
 * A limit's value as a person types it.
 *
 * @example
 * ```ts
 * import { formatLimit } from "./limits.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatLimit("memory", 2 * 1024 ** 3), "2G");
 * assert.equal(formatLimit("processes", 32), "32");
 * ```
 *
 * @param name The limit.
 * @param value Its value, in the unit of `ResourceLimits`.
 * @returns E.g. `64M`, `1m30s`, `32`.
 */
export function formatLimit(name: LimitName, value: number): string {
  if (name === "memory" || name === "file-size") return formatSize(value);
  if (name === "cpu") return formatDuration(value);
  return String(value);
}

/** What this system offers for one cgroup controller. */
export interface ControllerFact {
  /** Whether the run's cgroup can have this controller. */
  usable: boolean;
  /**
   * cgroup v2 only: the controller must first be enabled in the `cgroup.subtree_control` of our
   * own cgroup (possible only when that is the root cgroup, which may hold processes).
   */
  enable?: boolean;
  /** Why it is (not) usable, in words, for `--probe` and the plan's notes. */
  detail: string;
}

/** What the system offers for limits; exec/limits.ts's `limitFacts()` gathers it. */
export interface LimitFacts {
  /** The uid the command runs as: `RLIMIT_NPROC` does not apply to uid 0. */
  uid: number;
  /**
   * Tasks the command's uid has now, which `RLIMIT_NPROC` also counts; the fallback process cap
   * is set this much higher. Unknown: an explicit cap is set as given, the default one not at all.
   */
  userTasks?: number;
  /**
   * The command keeps uid 0 with `CAP_SYS_RESOURCE` and may write `/sys/fs/cgroup`: it can raise
   * its rlimits and leave its cgroups, so no limit is fully enforced.
   */
  privilegedCommand?: boolean;
  /** cgroup v2, for the run's cgroup (the supervisor's kill cgroup). */
  cgroupV2: { memory: ControllerFact; pids: ControllerFact };
  /** cgroup v1, for a per-run cgroup beneath our own in each hierarchy. */
  cgroupV1: { memory: ControllerFact; pids: ControllerFact };
}

/** How a limit is enforced. */
export type LimitMechanism = "cgroup-v2" | "cgroup-v1" | "rlimit";

/**
 * How much of what the option promises is enforced: all of it, only per process (or per user),
 * or nothing.
 */
export type LimitEnforcement = "full" | "partial" | "none";

/** One limit of a plan. */
export interface PlannedLimit {
  /** Which limit. */
  name: LimitName;
  /** Its option, e.g. `--max-memory`. */
  option: string;
  /** The value, in the unit of `ResourceLimits`. */
  value: number;
  /** The value as a person types it, e.g. `64M`. */
  shown: string;
  /** Whether this is the default process cap rather than a limit asked for. */
  isDefault: boolean;
  /** What enforces it, or `null` when nothing can on this system. */
  mechanism: LimitMechanism | null;
  /** Whether it binds each process (or user) rather than the run as a whole. */
  perProcess: boolean;
  /** How much of what the option promises holds. */
  enforcement: LimitEnforcement;
  /** What a person should know about it, a sentence each. */
  notes: string[];
}

/** An rlimit resource the plan may set (names from include/uapi/asm-generic/resource.h). */
export type RlimitResource =
  | "RLIMIT_AS"
  | "RLIMIT_CPU"
  | "RLIMIT_FSIZE"
  | "RLIMIT_NOFILE"
  | "RLIMIT_NPROC";

/** An rlimit the child sets, last, right before `execve`. */
export interface RlimitSetting {
  /** The resource. */
  resource: RlimitResource;
  /**
   * The soft limit. For `RLIMIT_CPU` in seconds of the command's own time, perhaps a fraction:
   * the child adds the CPU time it has used itself (which `execve` does not reset) and rounds
   * up to the whole seconds the kernel counts.
   */
  soft: number;
  /** The hard limit (for `RLIMIT_CPU`, one second above: SIGXCPU first, SIGKILL after). */
  hard: number;
}

/** A cgroup the run gets a limit in. */
export type CgroupTarget = "v2" | "v1-memory" | "v1-pids";

/** A value the supervisor writes to a file of one of the run's cgroups, then reads back. */
export interface CgroupWrite {
  /** The cgroup: the run's (kill) cgroup v2, or the per-run v1 cgroup of a controller. */
  cgroup: CgroupTarget;
  /** The file, e.g. `memory.max`. */
  file: string;
  /** What to write. */
  value: string;
  /** Written only where the file exists (swap files exist only where swap is accounted). */
  ifExists?: boolean;
}

/** Everything decided about limits: data only, serialisable, carried in the sandbox plan. */
export interface LimitPlan {
  /** Each limit set (the default process cap included), in `LIMIT_NAMES` order. */
  limits: PlannedLimit[];
  /** The cgroups the run needs, in the order they are set up. */
  cgroups: CgroupTarget[];
  /** cgroup v2 controllers to enable in our own cgroup's `cgroup.subtree_control` first. */
  enableV2: string[];
  /** The writes to the run's cgroups, in order, before the command starts. */
  cgroupWrites: CgroupWrite[];
  /** The rlimits the child sets, last before `execve`. */
  rlimits: RlimitSetting[];
  /** Limits asked for that nothing can enforce here: the run must not happen. */
  unenforceable: LimitName[];
  /** Whether every limit asked for is fully enforced (what `--require-full` needs). */
  fullyEnforced: boolean;
}

function rlimit(resource: RlimitResource, soft: number, hard = soft): RlimitSetting {
  return { resource, soft, hard };
}

/**
 * Decides how each limit is enforced on a system. Asked-for limits that nothing can enforce
 * are listed in `unenforceable` (the run must then not happen); the default process cap is
 * best effort and never blocks a run.
 *
 * @example On a system with cgroup v1 only, as root
 * ```ts
 * import { planLimits } from "./limits.ts";
 * import assert from "node:assert/strict";
 *
 * const no = { usable: false, detail: "no controller" };
 * const yes = { usable: true, detail: "a child cgroup can be made" };
 * const plan = planLimits({ memoryBytes: 64 * 1024 * 1024, cpuMs: 1500 }, {
 *   uid: 0,
 *   cgroupV2: { memory: no, pids: no },
 *   cgroupV1: { memory: yes, pids: yes },
 * });
 * assert.deepEqual(plan.limits.map((limit) => [limit.name, limit.mechanism]), [
 *   ["memory", "cgroup-v1"],
 *   ["processes", "cgroup-v1"],
 *   ["cpu", "rlimit"],
 * ]);
 * assert.deepEqual(plan.rlimits, [{ resource: "RLIMIT_CPU", soft: 1.5, hard: 2.5 }]);
 * assert.equal(plan.fullyEnforced, false);
 * ```
 *
 * @param limits The limits asked for.
 * @param facts What the system offers.
 * @returns The plan.
 * @throws {InvalidLimitError} When a limit is out of range.
 */
export function planLimits(limits: Readonly<ResourceLimits>, facts: LimitFacts): LimitPlan {
  const asked = validateLimits(limits);
  const plan: LimitPlan = {
    limits: [],
    cgroups: [],
    enableV2: [],
    cgroupWrites: [],
    rlimits: [],
    unenforceable: [],
    fullyEnforced: true,
  };
  const useCgroup = (target: CgroupTarget, controller: string, writes: CgroupWrite[]) => {
    if (!plan.cgroups.includes(target)) plan.cgroups.push(target);
    if (target === "v2" && facts.cgroupV2[controller as "memory" | "pids"].enable) {
      plan.enableV2.push(controller);
    }
    plan.cgroupWrites.push(...writes);
  };

  if (asked.memoryBytes !== undefined) {
    plan.limits.push(planMemory(asked.memoryBytes, facts, plan, useCgroup));
  }
  const processes = asked.processes ?? DEFAULT_MAX_PROCESSES;
  if (processes > 0) {
    const isDefault = asked.processes === undefined;
    plan.limits.push(planProcesses(processes, isDefault, facts, plan, useCgroup));
  }
  if (asked.cpuMs !== undefined) {
    const seconds = asked.cpuMs / 1000;
    plan.rlimits.push(rlimit("RLIMIT_CPU", seconds, seconds + 1));
    plan.limits.push(limitOf("cpu", asked.cpuMs, "rlimit", true, [
      `RLIMIT_CPU for each process: one that uses ${formatDuration(asked.cpuMs)} of CPU time ` +
      `gets SIGXCPU, and SIGKILL a second later if it ignores that (that end is not told ` +
      `apart from others); every process has its own budget`,
      "The kernel counts it in whole seconds of the process's time, the sandbox's start " +
      "included: the command gets at least the time asked, less than a second more",
    ]));
  }
  if (asked.fileSizeBytes !== undefined) {
    plan.rlimits.push(rlimit("RLIMIT_FSIZE", asked.fileSizeBytes));
    plan.limits.push(limitOf("file-size", asked.fileSizeBytes, "rlimit", false, [
      `RLIMIT_FSIZE: a write past ${formatSize(asked.fileSizeBytes)} in any file gets ` +
      `SIGXFSZ (EFBIG where that is ignored); every process of the run inherits it`,
    ]));
  }
  if (asked.openFiles !== undefined) {
    plan.rlimits.push(rlimit("RLIMIT_NOFILE", asked.openFiles));
    plan.limits.push(limitOf("open-files", asked.openFiles, "rlimit", false, [
      `RLIMIT_NOFILE: each process may have ${asked.openFiles} descriptors open; one more ` +
      `fails with EMFILE ("Too many open files")`,
    ]));
  }

  for (const limit of plan.limits) {
    if (limit.mechanism !== null && limit.enforcement === "full" && facts.privilegedCommand) {
      limit.enforcement = "partial";
      limit.notes.push(
        "The command runs as root with CAP_SYS_RESOURCE and may write /sys/fs/cgroup: it can " +
          "raise its rlimits and leave its cgroups",
      );
    }
  }
  plan.unenforceable = plan.limits
    .filter((limit) => !limit.isDefault && limit.mechanism === null)
    .map((limit) => limit.name);
  plan.fullyEnforced = plan.limits.every((limit) =>
    limit.isDefault || limit.enforcement === "full"
  );
  return plan;
}

type UseCgroup = (target: CgroupTarget, controller: string, writes: CgroupWrite[]) => void;

function limitOf(
  name: LimitName,
  value: number,
  mechanism: LimitMechanism | null,
  perProcess: boolean,
  notes: string[],
  isDefault = false,
): PlannedLimit {
  return {
    name,
    option: LIMIT_OPTIONS[name],
    value,
    shown: formatLimit(name, value),
    isDefault,
    mechanism,
    perProcess,
    enforcement: mechanism === null ? "none" : perProcess ? "partial" : "full",
    notes,
  };
}

function planMemory(
  bytes: number,
  facts: LimitFacts,
  plan: LimitPlan,
  useCgroup: UseCgroup,
): PlannedLimit {
  const shown = formatSize(bytes);
  const killed = "at the limit the kernel's OOM killer ends a process of the run (exit 137)";
  if (facts.cgroupV2.memory.usable) {
    useCgroup("v2", "memory", [
      { cgroup: "v2", file: "memory.max", value: String(bytes) },
      { cgroup: "v2", file: "memory.swap.max", value: "0", ifExists: true },
    ]);
    return limitOf("memory", bytes, "cgroup-v2", false, [
      `memory.max ${shown} and memory.swap.max 0 on the run's cgroup: all its processes ` +
      `together, no swap (where swap is accounted); ${killed}`,
    ]);
  }
  if (facts.cgroupV1.memory.usable) {
    useCgroup("v1-memory", "memory", [
      { cgroup: "v1-memory", file: "memory.limit_in_bytes", value: String(bytes) },
      // Only where swap is accounted; must not be below limit_in_bytes, so it comes second.
      {
        cgroup: "v1-memory",
        file: "memory.memsw.limit_in_bytes",
        value: String(bytes),
        ifExists: true,
      },
      { cgroup: "v1-memory", file: "memory.swappiness", value: "0", ifExists: true },
    ]);
    return limitOf("memory", bytes, "cgroup-v1", false, [
      `memory.limit_in_bytes and memory.memsw.limit_in_bytes ${shown} on a cgroup v1 made for ` +
      `the run: all its processes together, swap included where it is accounted; ${killed}`,
      `Not with cgroup v2: ${facts.cgroupV2.memory.detail}`,
    ]);
  }
  plan.rlimits.push(rlimit("RLIMIT_AS", bytes));
  return limitOf("memory", bytes, "rlimit", true, [
    `RLIMIT_AS ${shown} for each process, not the run: N processes may use N times as much`,
    "It counts address space reserved, not memory used: runtimes that reserve large regions " +
    "(Node.js, the JVM, Go, sanitizers) may fail to start; an allocation past it fails " +
    "(ENOMEM) instead of ending the process, so the end is not attributed to the limit",
    `Not with cgroup v2: ${facts.cgroupV2.memory.detail}`,
    `Not with cgroup v1: ${facts.cgroupV1.memory.detail}`,
  ]);
}

function planProcesses(
  tasks: number,
  isDefault: boolean,
  facts: LimitFacts,
  plan: LimitPlan,
  useCgroup: UseCgroup,
): PlannedLimit {
  const what = isDefault
    ? `The default cap of ${tasks} tasks (--max-processes 0 lifts it)`
    : `${tasks} tasks`;
  const counted = "processes and threads count alike";
  if (facts.cgroupV2.pids.usable) {
    useCgroup("v2", "pids", [{ cgroup: "v2", file: "pids.max", value: String(tasks) }]);
    return limitOf("processes", tasks, "cgroup-v2", false, [
      `${what}: pids.max on the run's cgroup, for all its processes together (${counted}); ` +
      "a fork past it fails with EAGAIN",
    ], isDefault);
  }
  if (facts.cgroupV1.pids.usable) {
    useCgroup("v1-pids", "pids", [{ cgroup: "v1-pids", file: "pids.max", value: String(tasks) }]);
    return limitOf("processes", tasks, "cgroup-v1", false, [
      `${what}: pids.max on a cgroup v1 made for the run, for all its processes together ` +
      `(${counted}); a fork past it fails with EAGAIN`,
      `Not with cgroup v2: ${facts.cgroupV2.pids.detail}`,
    ], isDefault);
  }
  const why = [
    `Not with cgroup v2: ${facts.cgroupV2.pids.detail}`,
    `Not with cgroup v1: ${facts.cgroupV1.pids.detail}`,
  ];
  if (facts.uid === 0) {
    return limitOf("processes", tasks, null, false, [
      `${what} cannot be enforced: RLIMIT_NPROC, the only other means, does not apply to root`,
      ...why,
    ], isDefault);
  }
  if (facts.userTasks === undefined && isDefault) {
    return limitOf("processes", tasks, null, false, [
      `${what} is not set: RLIMIT_NPROC counts every task of uid ${facts.uid}, and how many ` +
      "it has now is not known",
      ...why,
    ], isDefault);
  }
  const base = facts.userTasks ?? 0;
  const limit = base + tasks;
  // Set on the child only: the user's other programs keep their own limit.
  plan.rlimits.push(rlimit("RLIMIT_NPROC", limit));
  return limitOf("processes", tasks, "rlimit", true, [
    `${what}: RLIMIT_NPROC ${limit}, which counts every task of uid ${facts.uid}, not the ` +
    `run's: ${
      facts.userTasks === undefined
        ? "the command may start fewer when the user already runs others"
        : `it had ${base} when planned, and its other programs use up the same budget`
    }`,
    ...why,
  ], isDefault);
}

/** How the command ended, as the supervisor saw it. */
export interface CommandEnd {
  /** The exit code; 128 + N for signal N when it ended by a signal. */
  code: number;
  /** The signal that ended it, by name (`SIGXCPU`) or number, or `null`. */
  signal: string | number | null;
}

/**
 * The counters of the run's cgroups, read after it ended and before they are removed. Absent
 * where there is no such cgroup or file.
 */
export interface LimitCounters {
  /** Processes the OOM killer ended: `oom_kill` of v2 `memory.events` or v1 `memory.oom_control`. */
  oomKills?: number;
  /** Forks refused at the cap: `max` of `pids.events` (v2 and v1). */
  forksRefused?: number;
  /**
   * CPU time the run's processes used, in milliseconds (the kill cgroup's `cpu.stat`): a
   * SIGXCPU that ends a run which used less than `--max-cpu` in all was not the limit's.
   */
  cpuUsageMs?: number;
}

/** Which limit, if any, ended a command, and the line that says so. */
export interface LimitOutcome {
  /** The limit the run ran into, or `null`. */
  limitExceeded: LimitName | null;
  /** One line for stderr, without a newline, or `null`. */
  message: string | null;
}

// Signal numbers from include/uapi/asm-generic/signal.h (x86_64 and aarch64 alike).
const SIGNALS: Readonly<Record<string, number>> = { SIGKILL: 9, SIGXCPU: 24, SIGXFSZ: 25 };

function signalNumber(end: CommandEnd): number | null {
  if (typeof end.signal === "number") return end.signal;
  if (typeof end.signal === "string") return SIGNALS[end.signal] ?? null;
  // An exit code of 128 + N is not the kernel's word: a shell passes a child's signal on that
  // way, and any program may exit 152 by itself.
  return null;
}

/**
 * Tells whether a command ran into a limit, from the kernel's evidence only: the cgroup counters
 * (an OOM kill, a refused fork) and the signal that ended it (SIGXCPU, SIGXFSZ). What an rlimit
 * refuses without a signal (`RLIMIT_AS`, `RLIMIT_NOFILE`, `RLIMIT_NPROC`: a failed call) leaves
 * no trace, so it is never reported; nor is a signal that matches no limit of the plan.
 *
 * @example A command killed by the OOM killer of its cgroup
 * ```ts
 * import { limitOutcome, planLimits } from "./limits.ts";
 * import assert from "node:assert/strict";
 *
 * const no = { usable: false, detail: "no controller" };
 * const yes = { usable: true, detail: "a child cgroup can be made" };
 * const plan = planLimits({ memoryBytes: 64 * 1024 * 1024 }, {
 *   uid: 0,
 *   cgroupV2: { memory: no, pids: no },
 *   cgroupV1: { memory: yes, pids: yes },
 * });
 * const outcome = limitOutcome(plan, { code: 137, signal: "SIGKILL" }, { oomKills: 1 });
 * assert.equal(outcome.limitExceeded, "memory");
 * assert.equal(
 *   outcome.message,
 *   "llmx-sandbox: the command exceeded --max-memory 64M " +
 *     "(cgroup v1 memory: killed by the kernel's OOM killer)",
 * );
 * ```
 *
 * @param plan The run's limit plan.
 * @param end How the command ended.
 * @param counters The counters of its cgroups.
 * @returns The limit and the message, or `null` for both.
 */
export function limitOutcome(
  plan: LimitPlan,
  end: CommandEnd,
  counters: LimitCounters,
): LimitOutcome {
  const signal = signalNumber(end);
  const planned = (name: LimitName) => plan.limits.find((limit) => limit.name === name);
  const found = (limit: PlannedLimit, how: string): LimitOutcome => ({
    limitExceeded: limit.name,
    message: limit.isDefault
      ? `llmx-sandbox: the command reached the default cap of ${limit.shown} tasks ` +
        `(${how}; --max-processes raises it, 0 lifts it)`
      : `llmx-sandbox: the command exceeded ${limit.option} ${limit.shown} (${how})`,
  });
  const where = (limit: PlannedLimit, controller: string) =>
    `cgroup ${limit.mechanism === "cgroup-v2" ? "v2" : "v1"} ${controller}`;

  const cpu = planned("cpu");
  // A process can raise SIGXCPU itself; where the run's CPU time is known, it must have reached
  // the limit.
  const cpuReached = counters.cpuUsageMs === undefined || cpu === undefined ||
    counters.cpuUsageMs >= cpu.value;
  if (cpu && signal === SIGNALS.SIGXCPU && cpuReached) {
    return found(cpu, "RLIMIT_CPU: killed by SIGXCPU");
  }
  const fileSize = planned("file-size");
  if (fileSize && signal === SIGNALS.SIGXFSZ) {
    return found(fileSize, "RLIMIT_FSIZE: killed by SIGXFSZ");
  }
  const memory = planned("memory");
  const oomKills = counters.oomKills ?? 0;
  if (memory && memory.mechanism !== "rlimit" && oomKills > 0) {
    const how = signal === SIGNALS.SIGKILL
      ? "killed by the kernel's OOM killer"
      : `the kernel's OOM killer ended ${plural(oomKills, "process", "processes")} of the run`;
    return found(memory, `${where(memory, "memory")}: ${how}`);
  }
  const processes = planned("processes");
  const refused = counters.forksRefused ?? 0;
  if (processes && processes.mechanism !== "rlimit" && refused > 0) {
    return found(
      processes,
      `${where(processes, "pids")}: ${plural(refused, "fork", "forks")} refused`,
    );
  }
  return { limitExceeded: null, message: null };
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}
