/**
 * Carries out a limit plan (policy/limits.ts): finds what this system offers, sets up the run's
 * cgroups before the command starts, joins them and sets the rlimits in the child, reads the
 * counters afterwards and removes the cgroups.
 *
 * cgroup v2 limits go on the supervisor's kill cgroup (exec/cgroup.ts), which the child joins
 * anyway. cgroup v1 limits get a cgroup made for the run beneath our own in each hierarchy.
 * The supervisor itself never joins either, so it stays outside the limits.
 *
 * Everything fails closed: a limit planned on a cgroup that cannot be set up is an error, and
 * the run does not happen; it never runs with a weaker limit.
 *
 * @module
 */

import { ownCgroupDir, parseRunCgroupName, runCgroupName } from "./cgroup.ts";
import type {
  CgroupTarget,
  ControllerFact,
  LimitCounters,
  LimitFacts,
  LimitPlan,
  RlimitSetting,
} from "../policy/limits.ts";
import { joinLimitCgroups, prepareRlimits } from "./child_limits.ts";

export { joinLimitCgroups, prepareRlimits };

/** A limit planned on a cgroup could not be set up; the command must not run. */
export class LimitSetupError extends Error {
  /**
   * Makes the error.
   * @param message What could not be done, and why.
   * @param options The underlying error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LimitSetupError";
  }
}

type Controller = "memory" | "pids";
const CONTROLLERS: readonly Controller[] = ["memory", "pids"];
/** A file of each controller that a cgroup has when the controller is on for it. */
const MARKER: Readonly<Record<Controller, { v1: string; v2: string }>> = {
  memory: { v1: "memory.limit_in_bytes", v2: "memory.max" },
  pids: { v1: "pids.max", v2: "pids.max" },
};

function read(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function message(error: unknown): string {
  // Deno's messages end with the call and the path ("…: mkdir '/sys/…'"), which ours name already.
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/: [a-z_]+ '[^']*'$/, "");
}

/**
 * This process's own cgroup folder in the v1 hierarchy of a controller.
 * @returns The folder, or why there is none.
 */
function ownV1Dir(controller: Controller): { dir?: string; why: string } {
  const own = read("/proc/self/cgroup")?.split("\n")
    .map((line) => line.split(":"))
    .find(([id, list]) => id !== "0" && list?.split(",").includes(controller))?.[2];
  if (own === undefined) return { why: `no cgroup v1 hierarchy has the ${controller} controller` };
  // mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ... - FSTYPE SOURCE SUPER"
  for (const line of read("/proc/self/mountinfo")?.split("\n") ?? []) {
    const [before, after] = line.split(" - ");
    const [fstype, , superOptions] = after?.split(" ") ?? [];
    if (fstype !== "cgroup" || !superOptions?.split(",").includes(controller)) continue;
    const [, , , root, point] = before.split(" ");
    // A mount of a sub-tree shows only what is beneath its root.
    if (root === "/") return { dir: `${point}${own === "/" ? "" : own}`, why: "" };
    if (own === root || own.startsWith(`${root}/`)) {
      return { dir: `${point}${own.slice(root.length)}`, why: "" };
    }
  }
  return {
    why: `the ${controller} hierarchy is not mounted where this process can see its cgroup`,
  };
}

/**
 * Makes and removes a child cgroup of `parent`, to learn whether a run's cgroup can be made.
 * @returns The files the child had, or why none could be made.
 */
function probeChild(parent: string): { files?: Set<string>; why: string } {
  const dir = `${parent}/${runCgroupName()}`;
  try {
    Deno.mkdirSync(dir);
  } catch (error) {
    return { why: `cannot make a cgroup in ${parent}: ${message(error)}` };
  }
  try {
    return { files: new Set([...Deno.readDirSync(dir)].map((entry) => entry.name)), why: "" };
  } finally {
    try {
      Deno.removeSync(dir);
    } catch {
      // Empty and just made: only a concurrent entry could keep it, and then it is not ours.
    }
  }
}

function v2Facts(): Record<Controller, ControllerFact> {
  const none = (detail: string) => ({
    memory: { usable: false, detail },
    pids: { usable: false, detail },
  });
  const own = ownCgroupDir();
  if (own === undefined) return none("no cgroup2 hierarchy is mounted");
  const available = read(`${own}/cgroup.controllers`)?.trim().split(/\s+/).filter(Boolean) ?? [];
  const enabled = read(`${own}/cgroup.subtree_control`)?.trim().split(/\s+/) ?? [];
  // Only the root has no cgroup.type, and only the root may hold processes and enable domain
  // controllers for its children at once (the "no internal processes" rule).
  const isRoot = !exists(`${own}/cgroup.type`);
  const facts = {} as Record<Controller, ControllerFact>;
  for (const controller of CONTROLLERS) {
    if (!available.includes(controller)) {
      facts[controller] = {
        usable: false,
        detail: `${own} has no ${controller} controller (cgroup.controllers: ` +
          `${available.join(" ") || "none"})`,
      };
    } else if (enabled.includes(controller)) {
      facts[controller] = { usable: true, detail: `${own} enables ${controller} for its children` };
    } else if (isRoot) {
      facts[controller] = {
        usable: true,
        enable: true,
        detail: `${own} is the root cgroup: ${controller} can be enabled for its children`,
      };
    } else {
      facts[controller] = {
        usable: false,
        detail: `${own} holds processes (this one among them), so it cannot enable ` +
          `${controller} for its children (the "no internal processes" rule), and ` +
          "llmx-sandbox does not move its caller",
      };
    }
  }
  if (CONTROLLERS.some((controller) => facts[controller].usable)) {
    const probe = probeChild(own);
    const why = probe.files === undefined
      ? probe.why
      : probe.files.has("cgroup.kill")
      ? undefined
      : `${own}'s children have no cgroup.kill (Linux 5.14), so the run has no kill cgroup`;
    if (why !== undefined) return none(why);
  }
  return facts;
}

function v1Facts(): Record<Controller, ControllerFact> {
  const facts = {} as Record<Controller, ControllerFact>;
  for (const controller of CONTROLLERS) {
    const { dir, why } = ownV1Dir(controller);
    if (dir === undefined) {
      facts[controller] = { usable: false, detail: why };
      continue;
    }
    const probe = probeChild(dir);
    if (probe.files === undefined) {
      facts[controller] = { usable: false, detail: probe.why };
    } else if (!probe.files.has(MARKER[controller].v1)) {
      facts[controller] = {
        usable: false,
        detail: `a cgroup made in ${dir} has no ${MARKER[controller].v1}`,
      };
    } else {
      const swap = controller !== "memory"
        ? ""
        : probe.files.has("memory.memsw.limit_in_bytes")
        ? " (swap accounted)"
        : " (swap not accounted: memory.swappiness 0 keeps the run's pages out of swap)";
      facts[controller] = { usable: true, detail: `a cgroup can be made in ${dir}${swap}` };
    }
  }
  return facts;
}

/** Tasks (threads included, as `RLIMIT_NPROC` counts them) whose real uid is `uid`. */
function tasksOf(uid: number): number | undefined {
  let tasks = 0;
  try {
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      const status = read(`/proc/${entry.name}/status`);
      if (status === undefined) continue; // Gone meanwhile.
      if (Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) !== uid) continue;
      tasks += Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 1);
    }
  } catch {
    return undefined;
  }
  return tasks;
}

/** Who the command runs as, for `limitFacts`. */
export interface LimitFactsOptions {
  /**
   * The uid the command runs as.
   * @default {Deno.uid()}
   */
  uid?: number;
  /**
   * Whether the command keeps root's `CAP_SYS_RESOURCE` and may write `/sys/fs/cgroup`.
   * @default {false}
   */
  privilegedCommand?: boolean;
}

/**
 * Finds what this system offers for limits: for cgroup v2, the controllers the run's cgroup (a
 * child of ours) can have; for cgroup v1, the hierarchies in which a cgroup can be made beneath
 * ours (tried by making and removing one); and how many tasks the command's user has. Changes
 * nothing that outlives the call.
 *
 * @example
 * ```ts
 * import { limitFacts } from "./limits.ts";
 * import assert from "node:assert/strict";
 *
 * const facts = limitFacts();
 * assert.equal(facts.uid, Deno.uid());
 * assert.equal(typeof facts.cgroupV1.pids.usable, "boolean");
 * ```
 *
 * @param options Who the command runs as.
 * @returns The facts, for `planLimits`.
 */
export function limitFacts(options: LimitFactsOptions = {}): LimitFacts {
  const uid = options.uid ?? Deno.uid() ?? -1;
  return {
    uid,
    userTasks: uid === 0 ? undefined : tasksOf(uid),
    privilegedCommand: options.privilegedCommand ?? false,
    cgroupV2: v2Facts(),
    cgroupV1: v1Facts(),
  };
}

let swept = false;

/** Whether a process is there and not a zombie (one that ended, not yet reaped). */
function alive(pid: number): boolean {
  const stat = read(`/proc/${pid}/stat`);
  return stat !== undefined &&
    stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
}

/**
 * Cleans up after earlier runs, beneath our own cgroups, once per process. A supervised run's
 * cgroup whose supervisor is gone (killed before it could end the run: SIGKILL, a crash) still
 * holds what the command started, with no timeout left to end it: that is killed
 * (`cgroup.kill`, or SIGKILL to each process in a cgroup v1 folder), then the folder removed
 * once empty (or by a later run). An in-place run's cgroup is only removed once empty: its
 * processes are the command's, left running as if it had been run directly. A folder whose pid
 * lives (or was reused) is not touched.
 */
export function sweepStaleCgroups(): void {
  if (swept) return;
  swept = true;
  const parents = [
    ownCgroupDir(),
    ...CONTROLLERS.map((controller) => ownV1Dir(controller).dir),
  ].filter((dir): dir is string => dir !== undefined);
  for (const parent of new Set(parents)) {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(parent)];
    } catch {
      continue;
    }
    for (const entry of entries) {
      const run = parseRunCgroupName(entry.name);
      if (!entry.isDirectory || run === undefined || alive(run.pid)) continue;
      const dir = `${parent}/${entry.name}`;
      if (!run.inPlace) {
        try {
          Deno.writeTextFileSync(`${dir}/cgroup.kill`, "1");
        } catch {
          killIn(dir); // cgroup v1 has no cgroup.kill.
        }
      }
      try {
        Deno.removeSync(dir);
      } catch {
        // Still in use (killed processes leave as they are reaped), or not ours to remove.
      }
    }
  }
}

/** What `createLimitCgroups` needs from the supervisor. */
export interface LimitCgroupOptions {
  /**
   * The kill cgroup's `cgroup.procs` (`KillCgroup.procsPath`): the cgroup v2 limits go on that
   * cgroup. Required when the plan has cgroup v2 limits.
   */
  killCgroupProcs?: string;
  /**
   * Whether the run is in place: its cgroups are named so that a later run removes them once
   * empty but never kills what is in them (see `runCgroupName`). @default false
   */
  inPlace?: boolean;
}

/** The cgroups set up for one run. */
export interface LimitCgroups {
  /**
   * The cgroup v1 `cgroup.procs` files the child joins (`joinLimitCgroups`) before it applies
   * the sandbox. The cgroup v2 limits are on the kill cgroup, which it joins anyway.
   */
  procsPaths: string[];
  /** Writes left out because the file does not exist (swap not accounted), in words. */
  skipped: string[];
  /** Reads the counters; after the run, before `remove()` (and before the kill cgroup goes). */
  readOutcome(): LimitCounters;
  /** Sends SIGKILL to every process still in the run's cgroup v1 folders (one pass). */
  kill(): void;
  /**
   * Kills what is left, then removes the cgroup v1 folders, retrying while they are busy, for
   * at most about 3 s. Never throws.
   * @returns The folders that could not be removed (none, normally).
   */
  remove(): Promise<string[]>;
}

/** The file of a write that is a memory amount, which the kernel rounds down to a page. */
const BYTE_FILES = new Set(["memory.max", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]);

function verify(path: string, file: string, want: string): void {
  const got = read(path)?.trim();
  const rounded = BYTE_FILES.has(file) && /^\d+$/.test(got ?? "") &&
    Number(want) - Number(got) >= 0 && Number(want) - Number(got) < 65536;
  if (got !== want && !rounded) {
    throw new Error(`${path} reads back as ${JSON.stringify(got)}, not ${want}`);
  }
}

function controllerOf(target: CgroupTarget, file: string): Controller {
  if (target === "v1-memory") return "memory";
  if (target === "v1-pids") return "pids";
  return file.startsWith("pids.") ? "pids" : "memory";
}

function pidsIn(dir: string): number[] {
  return (read(`${dir}/cgroup.procs`) ?? "").split("\n").filter(Boolean).map(Number);
}

function killIn(dir: string): void {
  // Each pid is in the run's cgroup when read; only an exit and a reuse of the pid between the
  // read and the kill could misdirect the signal.
  for (const pid of pidsIn(dir)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // Gone meanwhile.
    }
  }
}

async function removeCgroup(dir: string): Promise<boolean> {
  // Killed processes leave the cgroup as they exit; rmdir fails (EBUSY) until then.
  for (let attempt = 0; attempt < 300; attempt++) {
    killIn(dir);
    try {
      Deno.removeSync(dir);
      return true;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}

/** Counters in `key value` lines (`memory.events`, `pids.events`, `memory.oom_control`). */
function counter(path: string, key: string): number | undefined {
  const line = read(path)?.split("\n").find((line) => line.startsWith(`${key} `));
  return line === undefined ? undefined : Number(line.slice(key.length + 1));
}

function sum(values: (number | undefined)[]): number | undefined {
  const known = values.filter((value) => value !== undefined);
  return known.length === 0 ? undefined : known.reduce((a, b) => a + b, 0);
}

/**
 * Sets up the cgroups of a plan, before the command starts: enables cgroup v2 controllers where
 * the plan says so, makes a cgroup v1 folder per controller beneath our own, writes every limit
 * and reads it back. On any failure it removes what it made and throws: the run must not happen.
 *
 * @example A plan without cgroups needs nothing
 * ```ts
 * import { createLimitCgroups } from "./limits.ts";
 * import { planLimits } from "../policy/limits.ts";
 * import assert from "node:assert/strict";
 *
 * const no = { usable: false, detail: "none here" };
 * const plan = planLimits({ processes: 0, openFiles: 64 }, {
 *   uid: 0,
 *   cgroupV2: { memory: no, pids: no },
 *   cgroupV1: { memory: no, pids: no },
 * });
 * const cgroups = createLimitCgroups(plan);
 * assert.deepEqual(cgroups.procsPaths, []);
 * assert.deepEqual(await cgroups.remove(), []);
 * ```
 *
 * @param plan The run's limit plan.
 * @param options The kill cgroup, for cgroup v2 limits.
 * @returns The handles, for the child and for after the run.
 * @throws {LimitSetupError} When a planned cgroup limit cannot be set up.
 */
export function createLimitCgroups(
  plan: LimitPlan,
  options: LimitCgroupOptions = {},
): LimitCgroups {
  const dirs: Partial<Record<CgroupTarget, string>> = {};
  const made: string[] = [];
  const skipped: string[] = [];
  const limitOf = (controller: Controller) => {
    const limit = plan.limits.find((limit) =>
      limit.name === (controller === "memory" ? "memory" : "processes")
    );
    return limit ? `${limit.option} ${limit.shown}` : controller;
  };
  let step = "";
  let controller: Controller = "memory";
  try {
    for (const target of plan.cgroups) {
      if (target === "v2") {
        const first = plan.cgroupWrites.find((write) => write.cgroup === "v2");
        controller = controllerOf("v2", first?.file ?? "");
        step = "finding the kill cgroup";
        if (options.killCgroupProcs === undefined) {
          throw new Error("the plan puts limits on the kill cgroup and there is none");
        }
        dirs.v2 = options.killCgroupProcs.replace(/\/cgroup\.procs$/, "");
        const parent = dirs.v2.replace(/\/[^/]+$/, "");
        for (const name of plan.enableV2) {
          controller = name as Controller;
          step = `enabling ${name} in ${parent}/cgroup.subtree_control`;
          const enabled = read(`${parent}/cgroup.subtree_control`)?.trim().split(/\s+/) ?? [];
          // Left enabled afterwards: other runs, or other programs, may rely on it by then.
          if (!enabled.includes(name)) {
            Deno.writeTextFileSync(`${parent}/cgroup.subtree_control`, `+${name}`, {
              create: false,
            });
          }
        }
      } else {
        controller = target === "v1-memory" ? "memory" : "pids";
        step = `finding this process's cgroup v1 ${controller} folder`;
        const { dir, why } = ownV1Dir(controller);
        if (dir === undefined) throw new Error(why);
        const run = `${dir}/${runCgroupName(options.inPlace)}`;
        step = `making ${run}`;
        Deno.mkdirSync(run);
        made.push(run);
        dirs[target] = run;
        if (controller === "memory") {
          // A cgroup v1 inherits oom_kill_disable: with it set, a run at its limit would hang
          // frozen instead of being killed. Written only when set (the file is deprecated).
          step = `reading ${run}/memory.oom_control`;
          if (counter(`${run}/memory.oom_control`, "oom_kill_disable") === 1) {
            Deno.writeTextFileSync(`${run}/memory.oom_control`, "0", { create: false });
            if (counter(`${run}/memory.oom_control`, "oom_kill_disable") !== 0) {
              throw new Error("oom_kill_disable stays set");
            }
          }
        }
      }
    }
    for (const write of plan.cgroupWrites) {
      controller = controllerOf(write.cgroup, write.file);
      const dir = dirs[write.cgroup];
      if (dir === undefined) throw new Error(`the plan writes to a cgroup it does not list`);
      const path = `${dir}/${write.file}`;
      step = `writing ${write.value} to ${path}`;
      if (write.ifExists && !exists(path)) {
        skipped.push(`${write.file}: not in ${dir} (swap is not accounted by this kernel)`);
        continue;
      }
      Deno.writeTextFileSync(path, write.value, { create: false });
      verify(path, write.file, write.value);
    }
  } catch (error) {
    for (const dir of made.reverse()) {
      try {
        Deno.removeSync(dir);
      } catch {
        // Nothing joined it yet; a failure here leaves an empty folder at worst.
      }
    }
    throw new LimitSetupError(
      `Cannot set up ${limitOf(controller)}: ${step}: ${message(error)}`,
      { cause: error },
    );
  }

  const v1 = made.slice();
  return {
    procsPaths: v1.map((dir) => `${dir}/cgroup.procs`),
    skipped,
    readOutcome(): LimitCounters {
      const oomKills = sum([
        dirs.v2 && plan.cgroupWrites.some((write) => write.file === "memory.max")
          ? counter(`${dirs.v2}/memory.events`, "oom_kill")
          : undefined,
        dirs["v1-memory"]
          ? counter(`${dirs["v1-memory"]}/memory.oom_control`, "oom_kill")
          : undefined,
      ]);
      const forksRefused = sum([
        dirs.v2 &&
          plan.cgroupWrites.some((write) => write.cgroup === "v2" && write.file === "pids.max")
          ? counter(`${dirs.v2}/pids.events`, "max")
          : undefined,
        dirs["v1-pids"] ? counter(`${dirs["v1-pids"]}/pids.events`, "max") : undefined,
      ]);
      return {
        ...(oomKills === undefined ? {} : { oomKills }),
        ...(forksRefused === undefined ? {} : { forksRefused }),
      };
    },
    kill(): void {
      for (const dir of v1) killIn(dir);
    },
    async remove(): Promise<string[]> {
      const left: string[] = [];
      for (const dir of v1) {
        if (!await removeCgroup(dir)) left.push(dir);
      }
      return left;
    },
  };
}

/**
 * Sets the plan's rlimits on the calling process at once (`prepareRlimits` then the setting).
 * Only for plans without `RLIMIT_AS`, or where nothing runs in this process afterwards.
 *
 * @example No rlimits, nothing to set
 * ```ts
 * import { applyRlimits } from "./limits.ts";
 *
 * applyRlimits([]);
 * ```
 *
 * @param rlimits `LimitPlan.rlimits`.
 * @throws {SyscallError|Error} When a limit cannot be set or reads back otherwise.
 */
export function applyRlimits(rlimits: readonly RlimitSetting[]): void {
  prepareRlimits(rlimits)();
}
