/**
 * A cgroup v2 per supervised command, so that a timeout or an abort kills every process the
 * command started, also those that left its process group (`setsid`, double fork). Used when
 * the cgroup2 hierarchy is mounted, has `cgroup.kill` (Linux 5.14) and lets us create a child
 * of our own cgroup; otherwise supervision falls back to the process group.
 *
 * @module
 */

/** A cgroup made for one command. */
export interface KillCgroup {
  /** The `cgroup.procs` file the child writes its pid to before it applies the sandbox. */
  procsPath: string;
  /** Kills every process in it (`cgroup.kill`). */
  kill(): void;
  /** The CPU time its processes used, in milliseconds (`cpu.stat`), when it can be read. */
  cpuUsageMs(): number | undefined;
  /** Waits (boundedly) until it is empty, then removes it. */
  remove(): Promise<void>;
}

function cgroup2Mount(): string | undefined {
  // mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ... - FSTYPE SOURCE SUPER"
  for (const line of Deno.readTextFileSync("/proc/self/mountinfo").split("\n")) {
    const [before, after] = line.split(" - ");
    if (after?.startsWith("cgroup2 ")) return before.split(" ")[4];
  }
  return undefined;
}

/**
 * This process's own cgroup v2 folder, beneath which the kill cgroups are made.
 * @returns The folder, or `undefined` without a cgroup2 hierarchy.
 */
export function ownCgroupDir(): string | undefined {
  const mount = cgroup2Mount();
  const own = Deno.readTextFileSync("/proc/self/cgroup").split("\n")
    .find((line) => line.startsWith("0::"))?.slice(3);
  if (mount === undefined || own === undefined) return undefined;
  return `${mount}${own === "/" ? "" : own}`;
}

/**
 * The name of a cgroup made for one run: unique across workers and copies of this module in one
 * process, and across pid reuse. A supervised run's carries its supervisor's pid, and is killed
 * by a later run once that pid is gone (the supervisor was killed before it could); an in-place
 * run's is marked so: its processes are the command's, left running as if run directly.
 * @param inPlace Whether the run is in place.
 * @returns `llmx-sandbox-PID-UUID` or `llmx-sandbox-inplace-PID-UUID`.
 */
export function runCgroupName(inPlace = false): string {
  return `llmx-sandbox-${inPlace ? "inplace-" : ""}${Deno.pid}-${crypto.randomUUID()}`;
}

/** What `runCgroupName` made: whose (the pid), and for which kind of run. */
export function parseRunCgroupName(
  name: string,
): { pid: number; inPlace: boolean } | undefined {
  const match = /^llmx-sandbox-(inplace-)?(\d+)-/.exec(name);
  return match ? { pid: Number(match[2]), inPlace: match[1] !== undefined } : undefined;
}

/**
 * Creates a cgroup beneath this process's own, or returns `undefined` when that is not
 * possible here (no cgroup2, no `cgroup.kill`, no permission).
 * @param inPlace Whether the run is in place (see `runCgroupName`).
 * @returns The cgroup, or `undefined`.
 */
export function createKillCgroup(inPlace = false): KillCgroup | undefined {
  let dir: string;
  try {
    const own = ownCgroupDir();
    if (own === undefined) return undefined;
    dir = `${own}/${runCgroupName(inPlace)}`;
    Deno.mkdirSync(dir);
  } catch {
    return undefined;
  }
  try {
    Deno.statSync(`${dir}/cgroup.kill`);
  } catch {
    Deno.removeSync(dir);
    return undefined;
  }
  return {
    procsPath: `${dir}/cgroup.procs`,
    kill() {
      try {
        Deno.writeTextFileSync(`${dir}/cgroup.kill`, "1");
      } catch {
        // Already removed.
      }
    },
    cpuUsageMs() {
      try {
        const line = Deno.readTextFileSync(`${dir}/cpu.stat`).split("\n")
          .find((line) => line.startsWith("usage_usec "));
        return line === undefined ? undefined : Number(line.slice("usage_usec ".length)) / 1000;
      } catch {
        return undefined;
      }
    },
    async remove() {
      // Killed processes leave the cgroup as they are reaped; rmdir fails (EBUSY) until then.
      for (let attempt = 0; attempt < 200; attempt++) {
        try {
          await Deno.remove(dir);
          return;
        } catch (error) {
          if (error instanceof Deno.errors.NotFound) return;
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };
}
