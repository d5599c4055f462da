// Shared by the red-team suite: the compiled probe, plans with some layers switched off, and
// the ways to run them. A plan is plain data, so a test can take the real plan and switch
// layers off to see that each one stops an attack by itself, and one cannot hide another's bug.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type Output, run, skipReason, which } from "../_helpers.ts";
import { probeKernel } from "../../exec/kernel.ts";
import { spawnPlan } from "../../exec/spawn.ts";
import { resolveRunAsOnSystem } from "../../exec/run_as.ts";
import { type CommandSpec, planSandbox, type SandboxPlan } from "../../policy/plan.ts";
import { planSeccomp } from "../../policy/seccomp.ts";
import { SandboxPolicy } from "../../policy/sandbox_policy.ts";
import { THREATS } from "./_threats.ts";

/** Why the C probe cannot be built here, or `undefined` when it can. */
export const NO_GCC: string | undefined = which("gcc") ? undefined : "gcc not installed";

/** Why a case that needs root (its positive control, or its target) is skipped. */
export const NOT_ROOT: string | undefined = Deno.uid() === 0
  ? undefined
  : "needs root for the positive control";

let probePath: string | undefined;

/**
 * The probe's path, compiled on first use into a folder every user may enter (the --run-as
 * cases run it as `nobody`). A compiler error fails the test: only a missing gcc is a skip.
 */
export function probe(): string {
  if (probePath) return probePath;
  const dir = Deno.makeTempDirSync({ prefix: "llmx-redteam-probe-" });
  Deno.chmodSync(dir, 0o755);
  const source = fileURLToPath(new URL("./probe.c", import.meta.url));
  const out = new Deno.Command("gcc", {
    args: ["-O1", "-Wall", "-Werror", "-o", `${dir}/probe`, source],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (!out.success) {
    throw new Error(`gcc could not build the probe: ${new TextDecoder().decode(out.stderr)}`);
  }
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  return probePath = `${dir}/probe`;
}

/** A layer of the sandbox that a test can switch off. */
export type Layer = "landlock" | "seccomp" | "capabilities" | "no_new_privs" | "run_as";

/** Which layers a run keeps: all of them as planned, or only those listed. */
export type Layers = "all" | readonly Layer[];

const LAYER_NAMES: Record<Layer, string> = {
  landlock: "Landlock",
  seccomp: "seccomp",
  capabilities: "capability drop",
  no_new_privs: "no_new_privs",
  run_as: "--run-as nobody",
};

/** How a step names the layers it runs with. */
export function describeLayers(layers: Layers): string {
  if (layers === "all") return "all layers";
  if (layers.length === 0) return "no layer";
  return `${layers.map((layer) => LAYER_NAMES[layer]).join(" + ")} alone`;
}

/** `nobody`, resolved on this machine, for the --run-as cases. */
export function nobody(): NonNullable<CommandSpec["runAs"]> {
  return resolveRunAsOnSystem("nobody");
}

/**
 * The plan for a command under a policy on this kernel, with only some layers left on.
 * Landlock off means no domain at all, and the filter is then the one the planner makes where
 * there is none (with the rows for ptrace-class calls and unscoped signals). no_new_privs stays
 * on with Landlock or seccomp (an ordinary user needs it for either).
 * @param policy The policy.
 * @param command What to run; its `runAs` is kept only with the `run_as` layer.
 * @param layers What to keep.
 * @returns The plan.
 */
export function layeredPlan(
  policy: SandboxPolicy,
  command: CommandSpec,
  layers: Layers,
): SandboxPlan {
  const kernel = probeKernel();
  const keepRunAs = layers === "all" || layers.includes("run_as");
  // Reads stay open here: the suite attacks writes, the network, other processes and privileges,
  // and its probes live in temporary folders. Restricted reads have tests of their own
  // (tests/restricted_reads_test.ts).
  const readable = policy.hasFullDiskReadAccess()
    ? policy
    : new SandboxPolicy([...policy.permissions, { kind: "disk-full-read-access" }], policy);
  const plan = planSandbox(
    readable,
    keepRunAs ? command : { ...command, runAs: undefined },
    kernel,
  );
  if (layers === "all") return plan;
  const on = new Set(layers);
  const landlock = on.has("landlock");
  const ports = policy.getTcpPorts();
  const seccomp = on.has("seccomp")
    ? landlock ? plan.seccomp : planSeccomp({
      arch: kernel.arch,
      restrictNetwork: !policy.hasFullNetworkAccess(),
      restrictUnix: !policy.hasUnixSockets(),
      rootSetIdBits: (keepRunAs && command.runAs ? command.runAs.uid : kernel.uid) === 0 &&
        !policy.hasFullDiskWriteAccess(),
      tcp: { connect: ports.connect.length > 0, bind: ports.bind.length > 0 },
      ptraceScoped: false,
      signalsScoped: false,
    })
    : null;
  return {
    ...plan,
    landlock: landlock ? plan.landlock : { ...plan.landlock, apply: false },
    seccomp,
    capabilities: on.has("capabilities") ? plan.capabilities : null,
    noNewPrivs: on.has("no_new_privs") || landlock || seccomp !== null,
  };
}

/** The environment the probe runs with. */
export const ENV: Readonly<Record<string, string>> = { PATH: "/usr/bin:/bin" };

/** A probe command: the probe and its arguments, with `ENV`, from `/` unless told. */
export function probeCommand(
  args: readonly string[],
  runAs?: CommandSpec["runAs"],
  cwd = "/",
): CommandSpec {
  return { argv: [probe(), ...args], cwd, env: ENV, runAs };
}

/**
 * Runs a plan under the supervisor, as the library does, and captures its output.
 * @param plan The plan.
 * @param stdin What the command reads, if anything.
 * @returns How it ended.
 */
export async function runPlan(plan: SandboxPlan, stdin?: string): Promise<Output> {
  const child = spawnPlan(plan, { stdin: stdin === undefined ? "null" : "piped" });
  if (child.stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const [stdout, stderr, status] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.status,
  ]);
  return { code: status.exitCode, signal: status.signal, stdout, stderr };
}

/** Runs the probe directly: no sandbox, no supervisor. */
export function runProbe(args: readonly string[], cwd = "/"): Promise<Output> {
  return run(probe(), args, { env: { ...ENV }, cwd });
}

/** The in-place runner: applies a plan file to itself and `execve`s, as the CLI's in-place mode. */
export const APPLY_PLAN = fileURLToPath(new URL("./_apply_plan.ts", import.meta.url));

/**
 * The command line that applies a plan in place (the Deno process becomes the command), for
 * cases that need what only in-place mode gives: a controlling terminal, an inherited fd.
 * @param planFile A file holding the plan as JSON.
 */
export function applyPlanCommand(planFile: string): string[] {
  return [Deno.execPath(), "run", "--allow-all", "--quiet", APPLY_PLAN, planFile];
}

/** Asserts the probe's one line: the escape worked. */
export function assertWorked(out: Output, detail?: string): void {
  assert.equal(out.code, 0, `the escape works: ${out.stdout}${out.stderr}`);
  assert.match(out.stdout, detail === undefined ? /^ok .*\n$/ : new RegExp(`^ok ${detail}\n$`));
}

/** Asserts the probe's one line: `call` failed with `errno`. */
export function assertRefused(out: Output, call: string, errno: string): void {
  assert.equal(out.stdout, `refused ${call} ${errno}\n`, out.stderr);
  assert.equal(out.code, 1, out.stderr);
}

/**
 * Registers one case of the threat table: the test's name comes from the table, with the
 * reason when it is skipped.
 * @param id The row's id in `THREATS`.
 * @param skip Why it cannot run here, or `undefined`.
 * @param fn The test.
 */
export function threatTest(
  id: string,
  skip: string | undefined,
  fn: (t: Deno.TestContext) => Promise<void> | void,
): void {
  const row = THREATS.find((threat) => threat.id === id);
  if (!row) throw new Error(`No threat ${id} in tests/redteam/_threats.ts`);
  Deno.test({ name: skipReason(row.test, skip), ignore: skip !== undefined, fn });
}

/** The first reason in a list, or `undefined` when there is none. */
export function firstReason(...reasons: (string | undefined)[]): string | undefined {
  return reasons.find((reason) => reason !== undefined);
}

/** A process of the test's own, outside the sandbox: the probe's `target`. */
export class Target {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buffered = "";
  /** Its pid. */
  pid = 0;
  /** The address of its secret. */
  address = "";
  /** The descriptor it holds open on the file it was given, or -1. */
  fd = -1;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  }

  /**
   * Starts the target and waits for its first line.
   * @param file A file it holds open for writing, if any.
   * @param cwd Its working folder.
   */
  static async start(file?: string, cwd?: string): Promise<Target> {
    const child = new Deno.Command(probe(), {
      args: file === undefined ? ["target"] : ["target", file],
      cwd,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const target = new Target(child);
    const [pid, address, fd] = (await target.#line()).split(" ");
    target.pid = Number(pid);
    target.address = address;
    target.fd = Number(fd);
    assert.ok(target.pid > 0 && address.startsWith("0x"), `the target started: ${pid} ${address}`);
    return target;
  }

  async #line(): Promise<string> {
    while (!this.#buffered.includes("\n")) {
      const { value, done } = await this.#reader.read();
      if (done) throw new Error("The target ended");
      this.#buffered += value;
    }
    const end = this.#buffered.indexOf("\n");
    const line = this.#buffered.slice(0, end);
    this.#buffered = this.#buffered.slice(end + 1);
    return line;
  }

  /** What its secret holds now. */
  async secret(): Promise<string> {
    await this.#writer.write(new TextEncoder().encode("show\n"));
    return await this.#line();
  }

  /** What the secret held when it started. */
  get original(): string {
    return `llmx-secret-${this.pid}`;
  }

  /** Ends it (SIGKILL unless it is gone) and returns how it ended. */
  async stop(): Promise<Deno.CommandStatus> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.#writer.close().catch(() => {});
    await this.#reader.cancel().catch(() => {});
    return await this.#child.status;
  }

  /** Its status without killing it: it must have ended by itself. */
  async ended(): Promise<Deno.CommandStatus> {
    const status = await this.#child.status;
    await this.#writer.close().catch(() => {});
    await this.#reader.cancel().catch(() => {});
    return status;
  }
}

/** Why a layer that needs Landlock ABI `abi` cannot be tested alone here, or `undefined`. */
export function landlockBelow(abi: number): string | undefined {
  const have = probeKernel().landlockAbi;
  return have >= abi ? undefined : `needs Landlock ABI ${abi}, this kernel has ${have}`;
}

/** One run that must be refused: the layers it keeps, and the probe's `CALL ERRNO`. */
export interface Denial {
  /** The layers left on. */
  layers: Layers;
  /** What the probe must print after `refused`, e.g. `socket EPERM`. */
  refused: string;
  /** Why this run cannot happen here, if it cannot (a visible skipped step). */
  skip?: string;
  /**
   * Whether the command runs as the case's `runAs`.
   * @default true with the `run_as` layer, false otherwise (all layers included)
   */
  runAs?: boolean;
}

/** An escape tried directly, with no layer, and with each set of layers that must stop it. */
export interface LayerCase {
  /** The policy whose plan is layered. */
  policy: SandboxPolicy;
  /** The probe's arguments, or a function that prepares a fresh target for each run. */
  args: readonly string[] | (() => Promise<readonly string[]>);
  /** Another identity, for the runs that ask for it (`Denial.runAs`). */
  runAs?: CommandSpec["runAs"];
  /** The probe's working folder. @default "/" */
  cwd?: string;
  /**
   * The layers of the second positive control, which must let the escape through.
   * @default [] (no layer)
   */
  control?: readonly Layer[];
  /** What the probe prints after `ok` when the escape works, as a pattern. */
  worked?: string;
  /** A count the escape raises (a listener's), read once everything sent has arrived. */
  count?: () => Promise<number>;
  /** Checks the escape's effect after a run that worked (a file written, a process read). */
  reached?(): Promise<void> | void;
  /** Checks that a refused run left no effect. */
  unchanged?(): Promise<void> | void;
  /** The runs that must be refused. */
  denials: readonly Denial[];
}

/**
 * The shape of a red-team case: (1) the escape works run directly, (2) it works through the
 * same harness with every layer off, (3) each listed set of layers refuses it with the errno
 * expected, and leaves no effect.
 */
export async function assertLayers(t: Deno.TestContext, c: LayerCase): Promise<void> {
  const args = async () => typeof c.args === "function" ? await c.args() : c.args;
  let seen = await c.count?.();
  const raised = async () => {
    const before = seen!;
    seen = await c.count!();
    return seen - before;
  };
  const worked = async (out: Output) => {
    assertWorked(out, c.worked);
    if (c.count) assert.ok(await raised() > 0, "the escape reaches the listener");
    await c.reached?.();
  };
  await t.step("positive control: works without the sandbox", async () => {
    await worked(await runProbe(await args(), c.cwd));
  });
  const control = c.control ?? [];
  await t.step(`positive control: works with ${describeLayers(control)}`, async () => {
    const command = probeCommand(
      await args(),
      control.includes("run_as") ? c.runAs : undefined,
      c.cwd,
    );
    await worked(await runPlan(layeredPlan(c.policy, command, control)));
  });
  for (const denial of c.denials) {
    const [call, errno] = denial.refused.split(" ");
    const runAs = denial.runAs ?? (denial.layers !== "all" && denial.layers.includes("run_as"));
    const layers = describeLayers(denial.layers) +
      (runAs && denial.layers === "all" ? " with --run-as nobody" : "");
    await t.step({
      name: skipReason(`${layers}: ${denial.refused}`, denial.skip),
      ignore: denial.skip !== undefined,
      fn: async () => {
        const command = probeCommand(await args(), runAs ? c.runAs : undefined, c.cwd);
        const out = await runPlan(layeredPlan(c.policy, command, denial.layers));
        assertRefused(out, call, errno);
        if (c.count) assert.equal(await raised(), 0, "nothing reaches the listener");
        await c.unchanged?.();
      },
    });
  }
}

/**
 * Writes a plan where the in-place runner can read it, for the duration of `fn`.
 * @param plan The plan.
 * @param fn Given the runner's command line.
 */
export async function withPlanFile<T>(
  plan: SandboxPlan,
  fn: (command: string[]) => Promise<T>,
): Promise<T> {
  const dir = Deno.makeTempDirSync({ prefix: "llmx-redteam-plan-" });
  try {
    Deno.writeTextFileSync(`${dir}/plan.json`, JSON.stringify(plan));
    return await fn(applyPlanCommand(`${dir}/plan.json`));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
