/**
 * Checks that a built file really is this program: it answers `--version` with our version,
 * and it runs commands in the sandbox, in place and supervised (the supervised mode starts the
 * binary again as its own child). A `deno compile` whose runtime was really the `deno` CLI
 * yields a file that is only Deno itself (it prints Deno's version, or opens a REPL): rejected
 * at the first check. Every run has stdin closed and a deadline, so nothing waits for a human.
 *
 * @module
 */

/** What the verification found. */
export type Verdict =
  | { ok: true; checks: string[] }
  | { ok: false; checks: string[]; failure: string };

/** How to verify. */
export interface VerifyOptions {
  /** Kill one run of the binary after this many milliseconds. @default 20000 */
  timeoutMs?: number;
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

async function runBinary(
  path: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
): Promise<Ran> {
  const child = new Deno.Command(path, {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, timeoutMs);
  try {
    const output = await child.output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return {
      code: output.code,
      stdout: decode(output.stdout),
      stderr: decode(output.stderr),
      timedOut,
    };
  } finally {
    clearTimeout(timer);
  }
}

function firstLine(text: string): string {
  const line = text.trim().split("\n")[0] ?? "";
  return line.length > 160 ? `${line.slice(0, 160)}…` : line;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Verifies a built binary for this machine.
 *
 * @example A Deno CLI is not a build of llmx-sandbox
 * ```ts ignore
 * const verdict = await verifyBinary(Deno.execPath(), "0.1.0");
 * verdict.ok; // false: it answered --version as Deno
 * ```
 *
 * @param path The file to check; it must be executable on this machine.
 * @param version The version it must report, from deno.json.
 * @param options Deadline per run.
 * @returns Each passed check, and the first failure if any.
 */
export async function verifyBinary(
  path: string,
  version: string,
  options: VerifyOptions = {},
): Promise<Verdict> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const checks: string[] = [];
  const dir = Deno.realPathSync(Deno.makeTempDirSync({ prefix: "llmx-verify-" }));
  const fail = (failure: string): Verdict => ({ ok: false, checks, failure });
  const describe = (args: string[], ran: Ran) =>
    ran.timedOut
      ? `\`${args.join(" ")}\` did not end within ${timeoutMs} ms`
      : `\`${args.join(" ")}\` exited ${ran.code}${
        ran.stderr.trim() ? `: ${firstLine(ran.stderr)}` : ""
      }`;
  try {
    const wanted = `llmx-sandbox ${version}`;
    const versionRun = await runBinary(path, ["--version"], dir, timeoutMs);
    if (versionRun.timedOut || versionRun.code !== 0 || versionRun.stdout.trim() !== wanted) {
      const answer = versionRun.timedOut
        ? `no answer within ${timeoutMs} ms`
        : JSON.stringify(firstLine(versionRun.stdout || versionRun.stderr));
      return fail(
        `--version answered ${answer} (exit ${versionRun.code}), not "${wanted}": not a build ` +
          `of this program (a DENORT_BIN that is the deno CLI makes such a hollow binary)`,
      );
    }
    checks.push(`--version: ${wanted}`);

    const modes = [["in place", []], ["supervised", ["--timeout", "30000"]]] as const;
    for (const [mode, flags] of modes) {
      const trueArgs = [...flags, "--", "true"];
      const trueRun = await runBinary(path, trueArgs, dir, timeoutMs);
      if (trueRun.timedOut || trueRun.code !== 0) {
        return fail(`${mode}: ${describe(trueArgs, trueRun)}`);
      }
      checks.push(`${mode}: true exits 0`);

      const denied = `${dir}/denied-${checks.length}`;
      const deniedArgs = [...flags, "--", "sh", "-c", `echo x > ${denied}`];
      const deniedRun = await runBinary(path, deniedArgs, dir, timeoutMs);
      if (deniedRun.timedOut || deniedRun.code === 0 || exists(denied)) {
        return fail(
          `${mode}: a write with no write permission was not denied (${
            describe(deniedArgs, deniedRun)
          }${exists(denied) ? ", and the file was written" : ""})`,
        );
      }
      checks.push(`${mode}: a write without permission is denied`);

      // The positive control: the same write, granted, must work, or the denial proves nothing.
      const allowed = `${dir}/allowed-${checks.length}`;
      const allowedArgs = [
        ...flags,
        "-s",
        "disk-write-cwd",
        "--",
        "sh",
        "-c",
        `echo x > ${allowed}`,
      ];
      const allowedRun = await runBinary(path, allowedArgs, dir, timeoutMs);
      if (allowedRun.timedOut || allowedRun.code !== 0 || !exists(allowed)) {
        return fail(`${mode}: a granted write failed (${describe(allowedArgs, allowedRun)})`);
      }
      checks.push(`${mode}: a granted write works`);
    }
    return { ok: true, checks };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** ELF machine numbers (`e_machine`, include/uapi/linux/elf-em.h). */
export const ELF_MACHINES: Readonly<Record<number, "x86_64" | "aarch64">> = {
  62: "x86_64", // EM_X86_64
  183: "aarch64", // EM_AARCH64
};

/**
 * The architecture an ELF file is built for.
 * @param path The file.
 * @returns `"x86_64"`, `"aarch64"`, another machine's number, or `undefined` when not ELF.
 */
export function elfArch(path: string): "x86_64" | "aarch64" | number | undefined {
  const file = Deno.openSync(path, { read: true });
  try {
    const header = new Uint8Array(20);
    let read = 0;
    while (read < header.length) {
      const n = file.readSync(header.subarray(read));
      if (n === null) break;
      read += n;
    }
    const magic = header[0] === 0x7f && header[1] === 0x45 && header[2] === 0x4c &&
      header[3] === 0x46;
    if (read < header.length || !magic) return undefined;
    // EI_DATA 1 = little-endian: both our targets.
    const machine = header[5] === 1
      ? header[18] | (header[19] << 8)
      : (header[18] << 8) | header[19];
    return ELF_MACHINES[machine] ?? machine;
  } finally {
    file.close();
  }
}
