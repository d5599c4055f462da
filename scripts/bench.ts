/**
 * `deno task bench`: what the sandbox costs, as ratios against the floor it cannot beat (one
 * Deno start-up) and against running the command bare. Prints a Markdown table and writes the
 * numbers as JSON to `bench-results/`. Whole commands are timed with hyperfine when installed
 * (one hyperfine call for all of them), else with an in-process loop after a warm-up; the
 * library and the pipes are timed in this process, the parent's memory in a fresh one. Medians
 * throughout: this is meant to run on a busy 2-core machine in about a minute.
 *
 * @module
 */

import { execSandboxed, spawnSandboxed } from "../mod.ts";
import { CHILD_RUN_FLAGS } from "../exec/spawn.ts";

const ROOT = new URL("../", import.meta.url);
const MAIN = new URL("main.ts", ROOT).pathname;
const MIB = 1024 * 1024;
const THROUGHPUT_BYTES = 200 * MIB;
const MEMORY_BYTES = 1024 * MIB;
/** The goals of issues 7 and 13. */
const GOALS = {
  startup: 1.3,
  library: 1.3,
  throughput: 0.9,
  memoryFlatMiB: 16,
  proxyStartupMs: 5,
  proxyThroughput: 0.8,
} as const;
const PROXY_BYTES = 100 * MIB;
const PROXY_RUNS = 5;

const RUNS = 60;
const WARMUP = 3;
const LIBRARY_CALLS = 30;
const THROUGHPUT_RUNS = 9;

/** One row of the table. */
interface Row {
  what: string;
  ours: string;
  reference: string;
  ratio: string;
  goal: string;
  verdict: string;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function which(tool: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      const info = Deno.statSync(`${dir}/${tool}`);
      if (info.isFile && (info.mode ?? 0) & 0o111) return `${dir}/${tool}`;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

function progress(line: string): void {
  console.error(`bench: ${line}`);
}

const ms = (value: number) => `${value.toFixed(1)} ms`;
const times = (value: number) => `${value.toFixed(2)}×`;

/** "met", or by how much the measured ratio misses a ceiling. */
function atMost(ratio: number, ceiling: number): string {
  return ratio <= ceiling
    ? "met"
    : `missed by ${((ratio / ceiling - 1) * 100).toFixed(0)}% (${times(ratio)} > ${
      times(ceiling)
    })`;
}

async function output(program: string, args: string[]): Promise<string> {
  try {
    const result = await new Deno.Command(program, { args, stdout: "piped", stderr: "null" })
      .output();
    return new TextDecoder().decode(result.stdout).trim();
  } catch {
    return "";
  }
}

async function machine(hyperfine: string | undefined): Promise<Record<string, string>> {
  const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.*)$/m)?.[1];
  return {
    cpu: cpu ?? Deno.build.arch,
    cores: String(navigator.hardwareConcurrency),
    memory: `${
      Math.round(
        Number(Deno.readTextFileSync("/proc/meminfo").match(/MemTotal:\s*(\d+)/)?.[1]) /
          MIB,
      )
    } GiB`,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    hyperfine: hyperfine ? await output(hyperfine, ["--version"]) : "not installed",
  };
}

/** Median wall time of each command, in ms: hyperfine when installed, else a loop here. */
async function timeCommands(
  commands: Record<string, string[]>,
  hyperfine: string | undefined,
  dir: string,
): Promise<{ medians: Record<string, number>; tool: string }> {
  const names = Object.keys(commands);
  if (hyperfine) {
    const json = `${dir}/hyperfine.json`;
    const quote = (arg: string) => /^[\w./:=@+-]+$/.test(arg) ? arg : `'${arg}'`;
    const result = await new Deno.Command(hyperfine, {
      args: [
        "--shell=none",
        "--warmup",
        String(WARMUP),
        "--runs",
        String(RUNS),
        "--style",
        "none",
        "--export-json",
        json,
        ...names.map((name) => commands[name].map(quote).join(" ")),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!result.success) {
      throw new Error(`hyperfine failed: ${new TextDecoder().decode(result.stderr).trim()}`);
    }
    const { results } = JSON.parse(Deno.readTextFileSync(json)) as {
      results: { median: number }[];
    };
    return {
      medians: Object.fromEntries(names.map((name, i) => [name, results[i].median * 1000])),
      tool: `hyperfine (${WARMUP} warm-up runs, ${RUNS} runs each)`,
    };
  }
  const samples: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < WARMUP + RUNS; round++) {
    // Interleaved, so that the machine's drift falls on every command alike.
    for (const name of names) {
      const [program, ...args] = commands[name];
      const started = performance.now();
      await new Deno.Command(program, { args, stdin: "null", stdout: "null", stderr: "null" })
        .output();
      if (round >= WARMUP) samples[name].push(performance.now() - started);
    }
  }
  return {
    medians: Object.fromEntries(names.map((name) => [name, median(samples[name])])),
    tool: `an in-process loop (hyperfine not installed; ${WARMUP} warm-up rounds, ${RUNS} runs)`,
  };
}

/** Reads a stream to its end, dropping the bytes: returns the count and the first byte's time. */
async function drain(
  stream: ReadableStream<Uint8Array>,
): Promise<{ bytes: number; first: number }> {
  let bytes = 0;
  let first = 0;
  for await (const chunk of stream) {
    if (!first) first = performance.now();
    bytes += chunk.length;
  }
  return { bytes, first };
}

/** MiB/s from the first byte to the last, so that start-up (measured apart) is not counted. */
async function throughput(
  start: () => {
    stdout: ReadableStream<Uint8Array>;
    stderr: ReadableStream<Uint8Array>;
    status: Promise<unknown>;
  },
): Promise<number> {
  const child = start();
  const [out] = await Promise.all([drain(child.stdout), drain(child.stderr)]);
  const end = performance.now();
  await child.status;
  if (out.bytes !== THROUGHPUT_BYTES) {
    throw new Error(`Read ${out.bytes} bytes, not ${THROUGHPUT_BYTES}`);
  }
  return out.bytes / MIB / ((end - out.first) / 1000);
}

/**
 * curl downloads PROXY_BYTES from a server of this process, in the sandbox: through the
 * `network-domain` proxy, and directly with `network-full-access`. Rates in MiB/s, medians.
 */
async function proxyThroughput(
  curl: string,
  dir: string,
): Promise<{ proxied: number; direct: number }> {
  const chunk = new Uint8Array(MIB).fill(97);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= PROXY_BYTES) return controller.close();
        controller.enqueue(chunk);
        sent += chunk.length;
      },
    });
    return new Response(body, { headers: { "content-length": String(PROXY_BYTES) } });
  });
  const url = `http://127.0.0.1:${server.addr.port}/blob`;
  const command = [curl, "-s", "-o", "/dev/null", url];
  const rate = async (policy: string[]) => {
    const started = performance.now();
    const result = await execSandboxed({ command, cwd: dir }, policy);
    if (result.exitCode !== 0) throw new Error(`curl exited ${result.exitCode}: ${result.stderr}`);
    return PROXY_BYTES / MIB / ((performance.now() - started) / 1000);
  };
  const proxied: number[] = [];
  const direct: number[] = [];
  try {
    for (let i = 0; i < PROXY_RUNS + 1; i++) {
      const p = await rate([...READ_ONLY, `network-domain=127.0.0.1:${server.addr.port}`]);
      const d = await rate([...READ_ONLY, "network-full-access"]);
      if (i > 0) proxied.push(p), direct.push(d);
    }
  } finally {
    await server.shutdown();
  }
  return { proxied: median(proxied), direct: median(direct) };
}

function headCommand(bytes: number): string[] {
  return ["head", "-c", String(bytes), "/dev/zero"];
}

function plainSpawn(argv: string[]) {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return { stdout: child.stdout, stderr: child.stderr, status: child.status };
}

/** The policy the library rows run with: the CLI's default, and the job bwrap does below. */
const READ_ONLY = ["disk-full-read-access"];

function sandboxedSpawn(argv: string[], cwd: string) {
  const child = spawnSandboxed({ command: argv, cwd }, READ_ONLY);
  return { stdout: child.stdout!, stderr: child.stderr!, status: child.status };
}

function memoryStatus(): { hwm: number; rss: number } {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kib = (key: string) => Number(status.match(new RegExp(`^${key}:\\s*(\\d+) kB`, "m"))?.[1]);
  return { hwm: kib("VmHWM") * 1024, rss: kib("VmRSS") * 1024 };
}

/**
 * Run in a fresh process: stream 1 GiB from the command, discarding it, sampling this process's
 * RSS every 8 MiB. With `collect`, a full garbage collection runs before each sample, so the
 * samples show what is retained: flat means the last quarter's peak is where the first
 * quarter's was. Without it, the peak (VmHWM) rise is what a caller really sees, garbage chunks
 * that V8 has not collected yet included.
 */
async function memoryProbe(mode: string, collect: boolean): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (collect && !gc) throw new Error("Run with --v8-flags=--expose-gc");
  const start = (bytes: number) =>
    mode === "sandboxed" ? sandboxedSpawn(headCommand(bytes), "/") : plainSpawn(headCommand(bytes));
  const warm = start(MIB);
  await Promise.all([drain(warm.stdout), drain(warm.stderr), warm.status]);
  const before = memoryStatus();
  const quarters = [0, 0, 0, 0];
  const child = start(MEMORY_BYTES);
  let bytes = 0;
  let nextSample = 0;
  const stderr = drain(child.stderr);
  for await (const chunk of child.stdout) {
    bytes += chunk.length;
    if (bytes >= nextSample) {
      if (collect) gc!();
      const quarter = Math.min(3, Math.floor(bytes / (MEMORY_BYTES / 4)));
      quarters[quarter] = Math.max(quarters[quarter], memoryStatus().rss);
      nextSample += 8 * MIB;
    }
  }
  await stderr;
  await child.status;
  const after = memoryStatus();
  console.log(JSON.stringify({
    bytes,
    rssBefore: before.rss,
    quarterPeakRss: quarters,
    hwmBefore: before.hwm,
    hwmAfter: after.hwm,
  }));
}

interface MemoryResult {
  bytes: number;
  rssBefore: number;
  quarterPeakRss: number[];
  hwmBefore: number;
  hwmAfter: number;
}

async function runMemoryProbe(mode: string, collect: boolean): Promise<MemoryResult> {
  const result = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--no-config",
      "--quiet",
      "--v8-flags=--expose-gc",
      new URL(import.meta.url).pathname,
      "--memory-probe",
      mode,
      collect ? "collect" : "peak",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(result.stdout).trim();
  if (!result.success) {
    throw new Error(
      `Memory probe ${mode} failed: ${new TextDecoder().decode(result.stderr).trim()}`,
    );
  }
  const parsed = JSON.parse(text) as MemoryResult;
  if (parsed.bytes !== MEMORY_BYTES) {
    throw new Error(`Memory probe ${mode} read ${parsed.bytes} bytes`);
  }
  return parsed;
}

function table(rows: Row[]): string {
  const header: Row = {
    what: "measurement",
    ours: "sandboxed",
    reference: "reference",
    ratio: "ratio",
    goal: "goal",
    verdict: "verdict",
  };
  const keys = Object.keys(header) as (keyof Row)[];
  const widths = keys.map((key) => Math.max(...[header, ...rows].map((row) => row[key].length)));
  const line = (row: Row) => `| ${keys.map((key, i) => row[key].padEnd(widths[i])).join(" | ")} |`;
  return [
    line(header),
    `| ${widths.map((width) => "-".repeat(width)).join(" | ")} |`,
    ...rows.map(line),
  ]
    .join("\n");
}

async function main(): Promise<number> {
  const hyperfine = which("hyperfine");
  const bwrap = which("bwrap");
  const truePath = which("true") ?? "/bin/true";
  const deno = Deno.execPath();
  const dir = Deno.realPathSync(Deno.makeTempDirSync({ prefix: "llmx-bench-" }));
  try {
    const empty = `${dir}/empty.ts`;
    Deno.writeTextFileSync(empty, "");
    const denoRun = [deno, "run", "--allow-all", "--no-config", "--quiet"];
    const bwrapTrue = bwrap
      ? [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-net", "--", truePath]
      : undefined;
    const commands: Record<string, string[]> = {
      denoEmpty: [...denoRun, empty],
      inPlace: [...denoRun, MAIN, "--", "true"],
      supervised: [...denoRun, MAIN, "--timeout", "60000", "--", "true"],
      bareTrue: [truePath],
      ...(bwrapTrue ? { bwrapTrue } : {}),
    };
    // Every module compiled and cached before anything is timed.
    for (const argv of Object.values(commands)) {
      await new Deno.Command(argv[0], { args: argv.slice(1), stdout: "null", stderr: "null" })
        .output();
    }

    progress(`whole commands with ${hyperfine ? "hyperfine" : "an in-process loop"}`);
    const whole = await timeCommands(commands, hyperfine, dir);
    const t = whole.medians;

    progress(
      `execSandboxed(["true"]) and a deno run spawn, ${LIBRARY_CALLS} calls each, interleaved`,
    );
    const library: number[] = [];
    const spawnFloor: number[] = [];
    const childFlags = CHILD_RUN_FLAGS;
    for (let i = 0; i < WARMUP + LIBRARY_CALLS; i++) {
      let started = performance.now();
      const result = await execSandboxed({ command: ["true"], cwd: dir }, READ_ONLY);
      if (result.exitCode !== 0) throw new Error(`execSandboxed true exited ${result.exitCode}`);
      if (i >= WARMUP) library.push(performance.now() - started);
      started = performance.now();
      // The same flags as the sandbox's own child, on an empty file: the floor of one spawn.
      await new Deno.Command(deno, {
        args: [...childFlags, empty],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      })
        .output();
      if (i >= WARMUP) spawnFloor.push(performance.now() - started);
    }

    progress(`200 MiB through the pipes, ${THROUGHPUT_RUNS} runs each, interleaved`);
    const sandboxedRates: number[] = [];
    const plainRates: number[] = [];
    const bwrapRates: number[] = [];
    for (let i = 0; i < THROUGHPUT_RUNS + 1; i++) {
      const keep = i > 0; // the first round warms up
      const s = await throughput(() => sandboxedSpawn(headCommand(THROUGHPUT_BYTES), dir));
      const p = await throughput(() => plainSpawn(headCommand(THROUGHPUT_BYTES)));
      if (keep) sandboxedRates.push(s), plainRates.push(p);
      if (bwrapTrue) {
        const b = await throughput(() =>
          plainSpawn([...bwrapTrue.slice(0, -1), ...headCommand(THROUGHPUT_BYTES)])
        );
        if (keep) bwrapRates.push(b);
      }
    }

    progress(`a library call with the network-domain proxy and without, ${LIBRARY_CALLS} each`);
    const withProxy: number[] = [];
    const withoutProxy: number[] = [];
    const domainPolicy = [...READ_ONLY, "network-domain=127.0.0.1:9"];
    for (let i = 0; i < WARMUP + LIBRARY_CALLS; i++) {
      let started = performance.now();
      await execSandboxed({ command: ["true"], cwd: dir }, domainPolicy);
      if (i >= WARMUP) withProxy.push(performance.now() - started);
      started = performance.now();
      await execSandboxed({ command: ["true"], cwd: dir }, READ_ONLY);
      if (i >= WARMUP) withoutProxy.push(performance.now() - started);
    }

    const curl = which("curl");
    let proxyRates: { proxied: number; direct: number } | undefined;
    if (curl) {
      progress(
        `100 MiB to curl in the sandbox, through the proxy and directly, ${PROXY_RUNS} each`,
      );
      proxyRates = await proxyThroughput(curl, dir);
    }

    progress("the parent's peak memory while 1 GiB streams (fresh processes)");
    const memSandboxed = await runMemoryProbe("sandboxed", true);
    const memPlain = await runMemoryProbe("plain", true);
    const peakSandboxed = await runMemoryProbe("sandboxed", false);
    const peakPlain = await runMemoryProbe("plain", false);

    const libraryMedian = median(library);
    const floorMedian = median(spawnFloor);
    const rate = { sandboxed: median(sandboxedRates), plain: median(plainRates) };
    const rise = (m: MemoryResult, quarter: number) =>
      (m.quarterPeakRss[quarter] - m.rssBefore) / MIB;
    const riseText = (m: MemoryResult) =>
      `+${rise(m, 0).toFixed(0)} → +${rise(m, 3).toFixed(0)} MiB`;
    const creep = rise(memSandboxed, 3) - rise(memSandboxed, 0);
    const mib = (value: number) => `${value.toFixed(0)} MiB/s`;

    const rows: Row[] = [
      {
        what: "CLI in place `-- true` vs `deno run` empty file",
        ours: ms(t.inPlace),
        reference: ms(t.denoEmpty),
        ratio: times(t.inPlace / t.denoEmpty),
        goal: `≤ ${times(GOALS.startup)}`,
        verdict: atMost(t.inPlace / t.denoEmpty, GOALS.startup),
      },
      {
        what: "CLI in place `-- true` vs bare `true`",
        ours: ms(t.inPlace),
        reference: ms(t.bareTrue),
        ratio: times(t.inPlace / t.bareTrue),
        goal: "—",
        verdict: "—",
      },
      {
        what: "CLI supervised `--timeout` vs `deno run` empty file",
        ours: ms(t.supervised),
        reference: ms(t.denoEmpty),
        ratio: times(t.supervised / t.denoEmpty),
        goal: "—",
        verdict: "—",
      },
      {
        what: "CLI supervised `--timeout` vs bare `true`",
        ours: ms(t.supervised),
        reference: ms(t.bareTrue),
        ratio: times(t.supervised / t.bareTrue),
        goal: "—",
        verdict: "—",
      },
      {
        what: '`execSandboxed(["true"])` per call vs spawning `deno run` empty file',
        ours: ms(libraryMedian),
        reference: ms(floorMedian),
        ratio: times(libraryMedian / floorMedian),
        goal: `≤ ${times(GOALS.library)}`,
        verdict: atMost(libraryMedian / floorMedian, GOALS.library),
      },
      {
        what: "200 MiB piped: `spawnSandboxed` vs `Deno.Command`",
        ours: mib(rate.sandboxed),
        reference: mib(rate.plain),
        ratio: times(rate.sandboxed / rate.plain),
        goal: `≥ ${times(GOALS.throughput)}`,
        verdict: rate.sandboxed / rate.plain >= GOALS.throughput
          ? "met"
          : `missed by ${((1 - rate.sandboxed / rate.plain / GOALS.throughput) * 100).toFixed(0)}%`,
      },
      {
        what: "parent peak RSS rise (VmHWM) while 1 GiB streams via `spawnSandboxed` " +
          "(vs `Deno.Command`)",
        ours: `+${((peakSandboxed.hwmAfter - peakSandboxed.hwmBefore) / MIB).toFixed(0)} MiB`,
        reference: `+${((peakPlain.hwmAfter - peakPlain.hwmBefore) / MIB).toFixed(0)} MiB`,
        ratio: "—",
        goal: "—",
        verdict: "—",
      },
      {
        what: "parent RSS retained (GC before each sample), first 256 MiB → last 256 MiB",
        ours: riseText(memSandboxed),
        reference: riseText(memPlain),
        ratio: "—",
        goal: `flat: last ≤ first + ${GOALS.memoryFlatMiB} MiB`,
        verdict: creep <= GOALS.memoryFlatMiB
          ? "met"
          : `missed by ${(creep - GOALS.memoryFlatMiB).toFixed(0)} MiB`,
      },
    ];
    const proxyCost = median(withProxy) - median(withoutProxy);
    rows.push({
      what: '`execSandboxed(["true"])` with a `network-domain` proxy vs without',
      ours: ms(median(withProxy)),
      reference: ms(median(withoutProxy)),
      ratio: `+${proxyCost.toFixed(1)} ms`,
      goal: `≤ +${GOALS.proxyStartupMs} ms`,
      verdict: proxyCost <= GOALS.proxyStartupMs
        ? "met"
        : `missed by ${(proxyCost - GOALS.proxyStartupMs).toFixed(1)} ms`,
    });
    if (proxyRates) {
      const ratio = proxyRates.proxied / proxyRates.direct;
      rows.push({
        what: "100 MiB over HTTP to curl in the sandbox: through the proxy vs directly " +
          "(`network-full-access`)",
        ours: mib(proxyRates.proxied),
        reference: mib(proxyRates.direct),
        ratio: times(ratio),
        goal: `≥ ${times(GOALS.proxyThroughput)}`,
        verdict: ratio >= GOALS.proxyThroughput
          ? "met"
          : `missed by ${((1 - ratio / GOALS.proxyThroughput) * 100).toFixed(0)}%`,
      });
    } else {
      rows.push({
        what: "proxy throughput (skipped: curl not installed)",
        ours: "—",
        reference: "—",
        ratio: "—",
        goal: "—",
        verdict: "skipped",
      });
    }
    if (bwrapTrue) {
      rows.push(
        {
          what: "bwrap (read-only /, no network) `true` vs bare `true`",
          ours: ms(t.bwrapTrue),
          reference: ms(t.bareTrue),
          ratio: times(t.bwrapTrue / t.bareTrue),
          goal: "—",
          verdict: "—",
        },
        {
          what: "CLI in place `-- true` vs bwrap `true`",
          ours: ms(t.inPlace),
          reference: ms(t.bwrapTrue),
          ratio: times(t.inPlace / t.bwrapTrue),
          goal: "—",
          verdict: "—",
        },
        {
          what: "200 MiB piped: `spawnSandboxed` vs bwrap via `Deno.Command`",
          ours: mib(rate.sandboxed),
          reference: mib(median(bwrapRates)),
          ratio: times(rate.sandboxed / median(bwrapRates)),
          goal: "—",
          verdict: "—",
        },
      );
    } else {
      rows.push({
        what: "bwrap rows (skipped: bwrap not installed; apt-get install bubblewrap)",
        ours: "—",
        reference: "—",
        ratio: "—",
        goal: "—",
        verdict: "skipped",
      });
    }

    const about = await machine(hyperfine);
    const printed = table(rows);
    console.log(
      `Machine: ${about.cpu}, ${about.cores} cores, ${about.memory}, Linux ${about.kernel}, ` +
        `Deno ${about.deno}; whole commands timed with ${whole.tool}; medians; throughput ` +
        `from the first byte to the last.\n`,
    );
    console.log(printed);

    const resultsDir = new URL("bench-results/", ROOT).pathname;
    Deno.mkdirSync(resultsDir, { recursive: true });
    const file = `${resultsDir}bench-${new Date().toISOString().replaceAll(":", "-")}.json`;
    Deno.writeTextFileSync(
      file,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          machine: about,
          timing: whole.tool,
          goals: GOALS,
          wholeCommandsMedianMs: t,
          commands,
          library: { execSandboxedMs: library, denoRunSpawnMs: spawnFloor },
          throughputMiBPerS: { sandboxed: sandboxedRates, plain: plainRates, bwrap: bwrapRates },
          memory: {
            retained: { sandboxed: memSandboxed, plain: memPlain },
            peak: { sandboxed: peakSandboxed, plain: peakPlain },
          },
          rows,
        },
        null,
        2,
      ) + "\n",
    );
    console.log(`\nWritten: ${file}`);
    return 0;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--memory-probe") {
    await memoryProbe(Deno.args[1], Deno.args[2] === "collect");
  } else if (Deno.args.length > 0) {
    console.error(`bench: Unknown argument: ${JSON.stringify(Deno.args[0])} (takes none)`);
    Deno.exit(2);
  } else {
    Deno.exit(await main());
  }
}
