// End to end: credential locations hidden under full read (the CLI's default). Every secret is
// a file these tests create in a scratch home folder passed to the CLI as $HOME, and remove;
// the real home folder's credentials are never touched. Each denial first shows the same read
// working without the sandbox and with --show (positive controls: a test that cannot fail
// proves nothing).

import assert from "node:assert/strict";
import { dirname } from "node:path";
import { prepareSandbox, spawnPlan } from "../mod.ts";
import { HOME_SECRETS } from "../policy/secrets.ts";
import {
  exists,
  MAIN,
  MODES,
  NOT_ROOT,
  type Output,
  run,
  runCli,
  skipReason,
  tempDir,
  which,
} from "./_helpers.ts";

/**
 * Exit codes that mean the CLI, not the command, ended the run (2, a wrong invocation, is also
 * what grep and tar end with after an unreadable file: the CLI's own error line tells them apart).
 */
const NOT_THE_COMMAND = [124, 125, 126, 127];

/** A line the CLI prints for an error of its own (warnings, hints and notes aside). */
const CLI_ERROR = /^llmx-sandbox: (?!warning:|hint:|note:)/m;

/** A pattern matching `text` literally. */
const literally = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** No config file of the user's takes part, and the default one lies outside every root. */
const NO_CONFIG = "/nonexistent/llmx-test-no-config";

/**
 * Where scratch home folders, and other folders holding hidden paths, go. Not under /tmp or
 * $TMPDIR: --full-auto makes those writable (a writable root holding a hidden location is
 * refused, and everyday tools run with --full-auto here). And the entries of each folder on the
 * way to a hidden location are planned one by one: /tmp, where other suites' temporary folders
 * come and go, would make a run fail when one goes between planning and running (see the test
 * on entries that come and go).
 */
const SCRATCH_BASE = "/var/tmp";

/** A fresh folder under SCRATCH_BASE, canonical. */
function scratchDir(prefix = "llmx-test-"): string {
  return Deno.realPathSync(Deno.makeTempDirSync({ dir: SCRATCH_BASE, prefix }));
}

/** This process's Deno cache: the CLI started with a scratch $HOME keeps using it. */
const DENO_DIR = Deno.env.get("DENO_DIR") ||
  (Deno.env.get("XDG_CACHE_HOME") ? `${Deno.env.get("XDG_CACHE_HOME")}/deno` : undefined) ||
  (Deno.env.get("HOME") ? `${Deno.env.get("HOME")}/.cache/deno` : undefined);

const PYTHON3 = which("python3");
const NO_PYTHON3 = PYTHON3 ? undefined : "python3 not installed";
// Deno puts its own `node` shim on PATH when there is no Node.js; that is not Node.
const NODE_FOUND = which("node");
const NODE = NODE_FOUND && !Deno.realPathSync(NODE_FOUND).endsWith("/deno") &&
    new TextDecoder().decode(
        new Deno.Command(NODE_FOUND, {
          args: ["-p", "typeof Deno"],
          stdout: "piped",
          stderr: "null",
        }).outputSync().stdout,
      ).trim() === "undefined"
  ? NODE_FOUND
  : undefined;
const NO_NODE = NODE ? undefined : "no real Node.js on PATH (absent, or Deno's node shim)";
const missing = (tool: string) => which(tool) ? undefined : `${tool} not installed`;
/** Whether this user may make a user namespace and mount in it (the direct control needs it). */
const NO_USERNS = (() => {
  if (!which("unshare")) return "unshare not installed";
  const out = new Deno.Command("unshare", {
    args: ["-rm", "true"],
    stdout: "null",
    stderr: "null",
  }).outputSync();
  return out.success ? undefined : "unshare -rm is refused here without the sandbox";
})();

/** Each built-in home entry as it is in real life, with the file a test reads in it. */
const ENTRIES: readonly { entry: string; file: string }[] = [
  { entry: ".ssh", file: ".ssh/id_ed25519" },
  { entry: ".gnupg", file: ".gnupg/private-keys-v1.d/0123456789ABCDEF.key" },
  { entry: ".aws", file: ".aws/credentials" },
  { entry: ".azure", file: ".azure/msal_token_cache.json" },
  { entry: ".config/gcloud", file: ".config/gcloud/application_default_credentials.json" },
  { entry: ".kube", file: ".kube/config" },
  { entry: ".docker/config.json", file: ".docker/config.json" },
  { entry: ".netrc", file: ".netrc" },
  { entry: ".git-credentials", file: ".git-credentials" },
  { entry: ".config/git/credentials", file: ".config/git/credentials" },
  { entry: ".config/gh", file: ".config/gh/hosts.yml" },
  { entry: ".npmrc", file: ".npmrc" },
  { entry: ".pypirc", file: ".pypirc" },
  { entry: ".cargo/credentials", file: ".cargo/credentials" },
  { entry: ".cargo/credentials.toml", file: ".cargo/credentials.toml" },
  { entry: ".password-store", file: ".password-store/email/work.gpg" },
  { entry: ".local/share/keyrings", file: ".local/share/keyrings/login.keyring" },
  { entry: ".pgpass", file: ".pgpass" },
  { entry: ".my.cnf", file: ".my.cnf" },
  { entry: ".config/containers/auth.json", file: ".config/containers/auth.json" },
  { entry: ".vault-token", file: ".vault-token" },
  { entry: ".terraform.d/credentials.tfrc.json", file: ".terraform.d/credentials.tfrc.json" },
];

/**
 * Ordinary files of a home folder, some beside a hidden entry or sharing the start of its name:
 * hiding must be exact. `.gitconfig` is a real one (git reads the committer from it).
 */
const ORDINARY: readonly string[] = [
  ".gitconfig",
  ".bashrc",
  ".netrc.example",
  ".ssh-old/readme",
  ".docker/daemon.json",
  ".cargo/config.toml",
  ".config/git/ignore",
  ".local/share/applications/editor.desktop",
];

/** A file with a marker in it: read when the marker shows. */
interface Marked {
  /** Absolute (canonical). */
  path: string;
  text: string;
}

interface Secret extends Marked {
  /** The HOME_SECRETS entry, relative to the home folder. */
  entry: string;
}

/** A scratch home folder holding every built-in entry and some ordinary files. */
interface ScratchHome {
  /** Canonical. */
  path: string;
  secrets: Secret[];
  ordinary: Marked[];
  /** The secret of one entry. */
  secret(entry: string): Secret;
}

function writeFile(path: string, text: string): void {
  Deno.mkdirSync(dirname(path), { recursive: true });
  Deno.writeTextFileSync(path, text, { mode: 0o600 });
}

function makeHome(): ScratchHome {
  const path = scratchDir("llmx-test-home-");
  const id = crypto.randomUUID();
  const secrets = ENTRIES.map(({ entry, file }) => {
    const secret = { entry, path: `${path}/${file}`, text: `llmx-test-secret-${entry}-${id}` };
    writeFile(secret.path, `${secret.text}\n`);
    return secret;
  });
  const ordinary = ORDINARY.map((file) => {
    const marked = { path: `${path}/${file}`, text: `llmx-test-ordinary-${file}-${id}` };
    writeFile(
      marked.path,
      file === ".gitconfig"
        ? `# ${marked.text}\n[user]\n\tname = LLMX Test\n\temail = llmx-test@example.invalid\n`
        : `${marked.text}\n`,
    );
    return marked;
  });
  return {
    path,
    secrets,
    ordinary,
    secret: (entry) => secrets.find((secret) => secret.entry === entry)!,
  };
}

async function withHome(fn: (home: ScratchHome) => Promise<void>): Promise<void> {
  const home = makeHome();
  try {
    await fn(home);
  } finally {
    Deno.removeSync(home.path, { recursive: true });
  }
}

/** The environment the CLI gets on top of this process's: the scratch home. */
function cliEnv(home: string): Record<string, string> {
  return { HOME: home, XDG_CONFIG_HOME: NO_CONFIG, ...(DENO_DIR ? { DENO_DIR } : {}) };
}

/** Runs the CLI as a user whose home folder is `home`. */
function sandboxed(home: string, args: readonly string[], cwd?: string): Promise<Output> {
  return runCli(args, { env: cliEnv(home), cwd });
}

/** Runs `sh -c script sh ...args` without the sandbox, with `home` as $HOME. */
function direct(
  home: string,
  script: string,
  args: readonly string[] = [],
  cwd?: string,
): Promise<Output> {
  return run("sh", ["-c", script, "sh", ...args], { env: cliEnv(home), cwd });
}

/** `sh -c script sh ...args`, as the command given to the CLI. */
const sh = (script: string, ...args: string[]) => ["sh", "-c", script, "sh", ...args];

/** Reads each argument, reporting what each `cat` printed and how it ended. */
const READ_EACH =
  'for f; do printf "<<%s>>\\n" "$f"; cat -- "$f"; printf "\\n<<rc=%s>>\\n" "$?"; done';

/** What READ_EACH reported, by the path given. */
function readsOf(stdout: string): Map<string, { text: string; code: number }> {
  const reads = new Map<string, { text: string; code: number }>();
  for (const match of stdout.matchAll(/<<([^\n]*?)>>\n([\s\S]*?)\n<<rc=(\d+)>>\n/g)) {
    reads.set(match[1], { text: match[2], code: Number(match[3]) });
  }
  return reads;
}

/** The command ran and ended by itself: the CLI refused nothing and reported no error. */
function assertRan(out: Output, what: string): void {
  assert.ok(
    !NOT_THE_COMMAND.includes(out.code) && !CLI_ERROR.test(out.stderr),
    `${what}: the command must have run (exit ${out.code}): ${out.stderr}`,
  );
}

/** READ_EACH read each of `files` (given as `names`, the paths by default). */
function assertEachRead(out: Output, files: readonly Marked[], names?: readonly string[]): void {
  assert.equal(out.code, 0, out.stderr);
  const reads = readsOf(out.stdout);
  files.forEach((file, i) => {
    const name = names?.[i] ?? file.path;
    const read = reads.get(name);
    assert.equal(read?.code, 0, `${name} must be readable: ${out.stderr}`);
    assert.ok(read!.text.includes(file.text), `${name} must be read: ${read!.text}`);
  });
}

/** READ_EACH ran, and each of `files` (given as `names`) was refused by the system. */
function assertEachDenied(out: Output, files: readonly Marked[], names?: readonly string[]): void {
  assertRan(out, "READ_EACH");
  assert.equal(out.code, 0, `the shell itself finished: ${out.stderr}`);
  const reads = readsOf(out.stdout);
  files.forEach((file, i) => {
    const name = names?.[i] ?? file.path;
    assert.ok(!out.stdout.includes(file.text), `${name} must not be read: ${out.stdout}`);
    const read = reads.get(name);
    assert.ok(read !== undefined, `${name} was tried: ${out.stdout}`);
    assert.notEqual(read.code, 0, `${name}: cat must fail`);
    assert.ok(
      out.stderr.includes(`${name}: Permission denied`),
      `${name}: refused by the system: ${out.stderr}`,
    );
  });
}

/** The command ran and none of the secrets shows in its output. */
function assertNothingRevealed(out: Output, secrets: readonly Marked[], what: string): void {
  assertRan(out, what);
  for (const secret of secrets) {
    assert.ok(!out.stdout.includes(secret.text), `${what} revealed ${secret.path}`);
    assert.ok(!out.stderr.includes(secret.text), `${what} revealed ${secret.path} on stderr`);
  }
}

/** Files under `folder` (recursively) that hold any of the secrets' markers. */
function filesRevealing(folder: string, secrets: readonly Marked[]): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    for (const entry of Deno.readDirSync(path)) {
      const child = `${path}/${entry.name}`;
      if (entry.isDirectory) walk(child);
      else if (entry.isFile) {
        const text = Deno.readTextFileSync(child);
        if (secrets.some((secret) => text.includes(secret.text))) found.push(child);
      }
    }
  };
  walk(folder);
  return found;
}

function emptyFolder(folder: string): void {
  for (const entry of Deno.readDirSync(folder)) {
    Deno.removeSync(`${folder}/${entry.name}`, { recursive: true });
  }
}

/** The plan `--explain` prints, the fields these tests read. */
interface Explained {
  hidden: string[];
  shown: string[];
}

async function explain(home: string, args: readonly string[]): Promise<Explained> {
  const out = await sandboxed(home, ["--explain", ...args, "--", "true"]);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout);
}

Deno.test("hidden locations: these tests cover every built-in home entry", () => {
  assert.deepEqual(
    ENTRIES.map(({ entry }) => entry).sort(),
    HOME_SECRETS.map(({ path }) => path).sort(),
  );
});

for (const { entry, file } of ENTRIES) {
  Deno.test(`hidden locations: ~/${entry} is unreadable under full read, readable with --show`, async (t) => {
    await withHome(async (home) => {
      const secret = home.secret(entry);
      const others = home.secrets.filter((other) => other !== secret);
      // The file by its absolute path and relative to the home folder as the working folder.
      const forms = [secret.path, file];
      await t.step("positive control: cat reads it without the sandbox", async () => {
        const out = await direct(home.path, READ_EACH, forms, home.path);
        assertEachRead(out, [secret, secret], forms);
      });
      for (const mode of MODES) {
        await t.step(`${mode.name}: unreadable by default`, async () => {
          const out = await sandboxed(home.path, [
            ...mode.flags,
            "--cwd",
            home.path,
            "--",
            ...sh(READ_EACH, ...forms),
          ]);
          assertEachDenied(out, [secret, secret], forms);
        });
        await t.step(
          `${mode.name}: readable with --show ~/${entry}, the others stay hidden`,
          async () => {
            const out = await sandboxed(home.path, [
              ...mode.flags,
              "--show",
              `~/${entry}`,
              "--",
              ...sh(READ_EACH, ...home.secrets.map((other) => other.path)),
            ]);
            const reads = readsOf(out.stdout);
            assert.equal(reads.get(secret.path)?.code, 0, out.stderr);
            assert.ok(reads.get(secret.path)!.text.includes(secret.text));
            for (const other of others) {
              assert.ok(!out.stdout.includes(other.text), `${other.entry} must stay hidden`);
              assert.notEqual(reads.get(other.path)?.code, 0, other.entry);
            }
          },
        );
      }
    });
  });
}

/** A way to reach ~/.ssh/id_ed25519 other than its path. */
interface Route {
  name: string;
  /** Run by sh; $1 is a readable folder outside $HOME, $2 the Deno binary, $3 the CLI. */
  script: string;
  /** CLI options besides the mode's. */
  options?: (home: string) => string[];
  /** The working folder, relative to the home folder. */
  cwd?: string;
  /** Why the route cannot be tried here, or `undefined`. */
  skip?: string;
  /**
   * Whether `--show ~/.ssh` opens the route (a positive control); `false` where another layer
   * stops it anyway, leaving the direct control alone.
   */
  showOpens?: boolean;
}

const WRITE_PROJECT = () => ["-s", "disk-write-folder=~/project"];

const ROUTES: readonly Route[] = [
  { name: "/proc/self/root", script: 'cat "/proc/self/root$HOME/.ssh/id_ed25519"' },
  { name: "/proc/thread-self/root", script: 'cat "/proc/thread-self/root$HOME/.ssh/id_ed25519"' },
  {
    name: "a symlink made before the run in a readable folder outside $HOME",
    script: 'cat "$1/key-link"',
  },
  { name: "a symlink in $HOME to the file", script: "cat ~/key-link" },
  { name: "a symlink in $HOME to its folder", script: "cat ~/ssh-link/id_ed25519" },
  {
    name: "a symlink the command makes in a writable root",
    options: WRITE_PROJECT,
    script: "ln -s ~/.ssh/id_ed25519 ~/project/sym && cat ~/project/sym",
  },
  {
    name: "'..' and '.' in the path",
    script: "cat ~/.ssh/../.ssh/id_ed25519 ~/.config/../.ssh/./id_ed25519",
  },
  {
    name: "a relative path from a working folder inside it, and /proc/self/cwd",
    cwd: ".ssh",
    script: "cat id_ed25519 /proc/self/cwd/id_ed25519",
  },
  {
    name: "a hard link the command makes in a writable root",
    options: WRITE_PROJECT,
    // Landlock refuses any link from a folder that is not writable into one that is (the file
    // would gain rights), shown or not: the full-write test has the positive control.
    showOpens: false,
    script: "ln ~/.ssh/id_ed25519 ~/project/hard && cat ~/project/hard",
  },
  {
    name: "cp -r into a writable root",
    options: WRITE_PROJECT,
    script: "cp -r ~/.ssh ~/project/copy; cat ~/project/copy/id_ed25519",
  },
  { name: "find -exec cat", script: "find ~ -name id_ed25519 -exec cat {} \\;" },
  { name: "grep -r over the home folder", script: "grep -r llmx-test-secret ~" },
  { name: "a glob", script: "cat ~/.ssh/*" },
  { name: "tar of the whole home folder", script: "tar -cf - -C ~ ." },
  { name: "a shell redirection", script: 'read -r line < ~/.ssh/id_ed25519; echo "$line"' },
  { name: "dd", script: 'dd if="$HOME/.ssh/id_ed25519" status=none' },
  {
    name: "python3: an O_PATH descriptor reopened through /proc/self/fd",
    skip: NO_PYTHON3,
    script: 'python3 "$1/reopen.py" "$HOME/.ssh/id_ed25519"',
  },
  {
    name: "python3: openat() from a descriptor of its folder",
    skip: NO_PYTHON3,
    script: 'python3 "$1/openat.py" "$HOME/.ssh/id_ed25519"',
  },
  {
    name: "open_by_handle_at() (CAP_DAC_READ_SEARCH)",
    skip: NOT_ROOT ?? NO_PYTHON3,
    showOpens: false,
    script: 'python3 "$1/by_handle.py" "$HOME/.ssh/id_ed25519"',
  },
  {
    name: "a bind mount in a new user namespace",
    skip: NO_USERNS,
    showOpens: false,
    script:
      `unshare -rm sh -c 'mount --bind "$HOME/.ssh" "$0/mnt" && cat "$0/mnt/id_ed25519"' "$1"`,
  },
  {
    name: "the sandbox run again inside, with --show",
    script: '"$2" run --allow-all --quiet "$3" -q --show ~/.ssh -- cat ~/.ssh/id_ed25519',
  },
];

/** Helpers the routes run: each prints the file named by its argument. */
const PYTHON_HELPERS: Record<string, string> = {
  "reopen.py": `import os, sys
fd = os.open(sys.argv[1], os.O_PATH)
print(open(f"/proc/self/fd/{fd}").read())
`,
  "openat.py": `import os, sys
folder = os.open(os.path.dirname(sys.argv[1]), os.O_RDONLY | os.O_DIRECTORY)
fd = os.open(os.path.basename(sys.argv[1]), os.O_RDONLY, dir_fd=folder)
print(os.read(fd, 4096).decode())
`,
  "by_handle.py": `import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class Handle(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint), ("type", ctypes.c_int), ("data", ctypes.c_ubyte * 128)]
handle = Handle(bytes=128)
mount = ctypes.c_int()
if libc.name_to_handle_at(-100, sys.argv[1].encode(), ctypes.byref(handle), ctypes.byref(mount), 0):
    sys.exit("name_to_handle_at: " + os.strerror(ctypes.get_errno()))
fd = libc.open_by_handle_at(os.open("/", os.O_RDONLY), ctypes.byref(handle), os.O_RDONLY)
if fd < 0:
    sys.exit("open_by_handle_at: " + os.strerror(ctypes.get_errno()))
print(os.read(fd, 4096).decode())
`,
};

Deno.test("hidden locations: other paths to a hidden file reveal nothing", async (t) => {
  await withHome(async (home) => {
    const key = home.secret(".ssh");
    const outside = tempDir();
    const project = `${home.path}/project`;
    try {
      Deno.mkdirSync(project);
      Deno.symlinkSync(key.path, `${outside}/key-link`);
      Deno.symlinkSync(key.path, `${home.path}/key-link`);
      Deno.symlinkSync(`${home.path}/.ssh`, `${home.path}/ssh-link`);
      Deno.mkdirSync(`${outside}/mnt`);
      for (const [name, text] of Object.entries(PYTHON_HELPERS)) {
        Deno.writeTextFileSync(`${outside}/${name}`, text);
      }
      const args = [outside, Deno.execPath(), MAIN];
      for (const route of ROUTES) {
        const cwd = `${home.path}/${route.cwd ?? ""}`;
        const cli = (flags: readonly string[]) =>
          sandboxed(home.path, [
            ...flags,
            ...(route.options?.(home.path) ?? []),
            "--cwd",
            cwd,
            "--",
            ...sh(route.script, ...args),
          ]);
        await t.step({
          name: skipReason(route.name, route.skip),
          ignore: route.skip !== undefined,
          async fn(t) {
            await t.step("positive control: it reads the file without the sandbox", async () => {
              emptyFolder(project);
              const out = await direct(home.path, route.script, args, cwd);
              assert.ok(out.stdout.includes(key.text), `${out.stdout}\n${out.stderr}`);
            });
            for (const mode of MODES) {
              if (route.showOpens ?? true) {
                await t.step(`${mode.name}: positive control: --show ~/.ssh opens it`, async () => {
                  emptyFolder(project);
                  const out = await cli([...mode.flags, "--show", "~/.ssh"]);
                  assert.ok(out.stdout.includes(key.text), `${out.stdout}\n${out.stderr}`);
                });
              }
              await t.step(`${mode.name}: nothing is revealed by default`, async () => {
                emptyFolder(project);
                const out = await cli(mode.flags);
                assertNothingRevealed(out, home.secrets, route.name);
                assert.deepEqual(filesRevealing(project, home.secrets), [], "nothing copied");
                assert.deepEqual(filesRevealing(outside, home.secrets), [], "nothing copied");
              });
            }
          },
        });
      }
    } finally {
      Deno.removeSync(outside, { recursive: true });
    }
  });
});

Deno.test("hidden locations: a process outside holding a hidden file open does not lend it", async (t) => {
  await withHome(async (home) => {
    const key = home.secret(".ssh");
    // Opens the key, says so, then waits on stdin with the descriptor open.
    const holder = new Deno.Command("sh", {
      args: ["-c", 'exec 3< "$1"; echo ready; exec cat', "sh", key.path],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = holder.stdout.getReader();
    try {
      const first = await reader.read();
      assert.equal(new TextDecoder().decode(first.value), "ready\n");
      const paths = [`/proc/${holder.pid}/fd/3`, `/proc/${holder.pid}/root${key.path}`];
      await t.step("positive control: readable through /proc without the sandbox", async () => {
        const out = await direct(home.path, READ_EACH, paths);
        assertEachRead(out, [key, key], paths);
      });
      for (const mode of MODES) {
        await t.step(`${mode.name}: refused`, async () => {
          const out = await sandboxed(home.path, [...mode.flags, "--", ...sh(READ_EACH, ...paths)]);
          assertEachDenied(out, [key, key], paths);
        });
      }
    } finally {
      await holder.stdin.close();
      reader.releaseLock();
      await holder.stdout.cancel();
      await holder.status;
    }
  });
});

Deno.test("hidden locations: an entry that comes, goes or is replaced beside one after planning does not stop the run", async (t) => {
  // Through the library, to change the folder between planning and running: the CLI has the
  // same window (in place and supervised), which whatever else writes in $HOME falls into.
  const changes: Record<string, (dir: string) => void> = {
    "none (control)": () => {},
    "a new entry": (dir) => Deno.mkdirSync(`${dir}/new`),
    "an entry removed": (dir) => Deno.removeSync(`${dir}/sibling`),
    "an entry replaced": (dir) => {
      Deno.removeSync(`${dir}/sibling`);
      Deno.mkdirSync(`${dir}/sibling`);
    },
  };
  for (const [name, change] of Object.entries(changes)) {
    await t.step(name, async () => {
      const dir = scratchDir();
      try {
        const id = crypto.randomUUID();
        const secret = { path: `${dir}/secret`, text: `llmx-test-secret-${id}` };
        const readme = { path: `${dir}/readme`, text: `llmx-test-readme-${id}` };
        writeFile(secret.path, secret.text);
        writeFile(readme.path, readme.text);
        Deno.mkdirSync(`${dir}/sibling`);
        const plan = prepareSandbox(
          { command: sh(READ_EACH, secret.path, readme.path), cwd: dir, hide: [secret.path] },
          ["disk-full-read-access"],
        );
        change(dir);
        const child = spawnPlan(plan, { stdout: "piped", stderr: "piped" });
        const [stdout, stderr] = await Promise.all([
          new Response(child.stdout).text(),
          new Response(child.stderr).text(),
        ]);
        const status = await child.status;
        const out = { code: status.exitCode, signal: null, stdout, stderr };
        assertEachDenied(out, [secret]);
        assertEachRead(out, [readme]);
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    });
  }
});

Deno.test("hidden locations: with disk-full-write-access a hidden file is neither read nor moved or linked into view", async (t) => {
  // As root, full write is refused unless the network is open too; the same policy for users.
  const FULL_WRITE = ["-s", "disk-full-write-access", "-s", "network-full-access"];
  await withHome(async (home) => {
    const key = home.secret(".ssh");
    const project = `${home.path}/project`;
    Deno.mkdirSync(project);
    const script = "cat ~/.ssh/id_ed25519; ln ~/.ssh/id_ed25519 ~/project/hard; " +
      "mv ~/.ssh/id_ed25519 ~/project/moved; cat ~/project/hard ~/project/moved; true";
    /** Puts the key back where it was, after a run that moved it. */
    const restore = () => {
      emptyFolder(project);
      writeFile(key.path, `${key.text}\n`);
    };
    for (const mode of MODES) {
      await t.step(
        `${mode.name}: positive control: with --show ~/.ssh all three work`,
        async () => {
          restore();
          const out = await sandboxed(home.path, [
            ...mode.flags,
            ...FULL_WRITE,
            "--show",
            "~/.ssh",
            "--",
            ...sh(script),
          ]);
          assert.equal(out.stdout.split(key.text).length - 1, 3, `${out.stdout}\n${out.stderr}`);
          assert.deepEqual([...Deno.readDirSync(project)].map((entry) => entry.name).sort(), [
            "hard",
            "moved",
          ]);
        },
      );
      await t.step(`${mode.name}: by default none does`, async () => {
        restore();
        const out = await sandboxed(home.path, [...mode.flags, ...FULL_WRITE, "--", ...sh(script)]);
        assertNothingRevealed(out, home.secrets, "full write");
        assert.match(out.stderr, /Invalid cross-device link/, "ln: refused by Landlock (EXDEV)");
        assert.deepEqual(filesRevealing(project, home.secrets), []);
        assert.equal(Deno.readTextFileSync(key.path), `${key.text}\n`, "the key stayed");
      });
      await t.step({
        name: skipReason(
          `${mode.name}: open_by_handle_at(), with CAP_DAC_READ_SEARCH kept, is refused too`,
          NOT_ROOT ?? NO_PYTHON3,
        ),
        ignore: (NOT_ROOT ?? NO_PYTHON3) !== undefined,
        async fn() {
          restore();
          const helper = tempDir();
          try {
            Deno.writeTextFileSync(`${helper}/by_handle.py`, PYTHON_HELPERS["by_handle.py"]);
            const command = ["python3", `${helper}/by_handle.py`, key.path];
            const shown = await sandboxed(home.path, [
              ...mode.flags,
              ...FULL_WRITE,
              "--show",
              "~/.ssh",
              "--",
              ...command,
            ]);
            assert.ok(shown.stdout.includes(key.text), `positive control: ${shown.stderr}`);
            const out = await sandboxed(home.path, [
              ...mode.flags,
              ...FULL_WRITE,
              "--",
              ...command,
            ]);
            assertNothingRevealed(out, home.secrets, "open_by_handle_at");
            assert.notEqual(out.code, 0);
          } finally {
            Deno.removeSync(helper, { recursive: true });
          }
        },
      });
    }
  });
});

Deno.test("hidden locations: the home folder is still listed, and its ordinary files read", async (t) => {
  await withHome(async (home) => {
    const names = ["ls ~", "ls -a ~", "ls ~/.ssh"];
    const script = 'ls ~; echo "<<ls>>"; ls -a ~; echo "<<ls -a>>"; ls ~/.ssh; echo "<<ls ssh>>"';
    const check = (out: Output) => {
      assert.equal(out.code, 0, out.stderr);
      const [plain, all, ssh] = out.stdout.split(/<<[^>]*>>\n/);
      assert.ok(plain !== undefined && all !== undefined && ssh !== undefined, out.stdout);
      assert.equal(plain, "", `${names[0]}: only dot files here`);
      const listed = all.trim().split("\n");
      for (const name of [".ssh", ".gnupg", ".aws", ".netrc", ".npmrc", ".config", ".gitconfig"]) {
        assert.ok(listed.includes(name), `${names[1]} lists ${name}: ${all}`);
      }
      // Names in a hidden folder can be listed (a documented gap), contents not.
      assert.equal(ssh, "id_ed25519\n", names[2]);
    };
    await t.step("positive control: without the sandbox", async () => {
      check(await direct(home.path, script));
      assertEachRead(await direct(home.path, READ_EACH, home.ordinary.map((f) => f.path)), [
        ...home.ordinary,
      ]);
    });
    for (const mode of MODES) {
      await t.step(`${mode.name}: ls ~, ls -a ~ and ls ~/.ssh list names`, async () => {
        check(await sandboxed(home.path, [...mode.flags, "--", ...sh(script)]));
      });
      await t.step(
        `${mode.name}: ordinary files read, beside hidden ones and with names alike`,
        async () => {
          const out = await sandboxed(home.path, [
            ...mode.flags,
            "--",
            ...sh(READ_EACH, ...home.ordinary.map((file) => file.path)),
          ]);
          assertEachRead(out, home.ordinary);
        },
      );
    }
  });
});

Deno.test("--hide makes a path unreadable; config hide and show keys do the same", async (t) => {
  await withHome(async (home) => {
    const outside = scratchDir();
    const configs = scratchDir();
    try {
      const id = crypto.randomUUID();
      const token = { path: `${home.path}/notes/token.txt`, text: `llmx-test-token-${id}` };
      const beside = { path: `${home.path}/notes/readme.txt`, text: `llmx-test-readme-${id}` };
      const file = { path: `${outside}/secret.txt`, text: `llmx-test-outside-${id}` };
      const relative = { path: `${configs}/rel.txt`, text: `llmx-test-relative-${id}` };
      for (const marked of [token, beside, file, relative]) writeFile(marked.path, marked.text);
      const key = home.secret(".ssh");
      const all = [token, beside, file, relative, key];
      const config = (value: unknown) => {
        const path = `${configs}/config-${crypto.randomUUID()}.json`;
        Deno.writeTextFileSync(path, JSON.stringify(value));
        return path;
      };
      const readAll = (options: string[], mode: { flags: readonly string[] }) =>
        sandboxed(home.path, [
          ...mode.flags,
          ...options,
          "--",
          ...sh(READ_EACH, ...all.map((marked) => marked.path)),
        ]);
      for (const mode of MODES) {
        await t.step(
          `${mode.name}: positive control: without --hide all but ~/.ssh read`,
          async () => {
            const out = await readAll([], mode);
            assertEachRead(out, [token, beside, file, relative]);
            assertEachDenied(out, [key]);
          },
        );
        const cases: [string, string[], Marked[]][] = [
          ["--hide an absolute file", ["--hide", file.path], [file]],
          ["--hide ~/notes/token.txt", ["--hide", "~/notes/token.txt"], [token]],
          ["--hide a folder", ["--hide", `${home.path}/notes`], [token, beside]],
          [
            "--hide a path relative to --cwd",
            ["--cwd", `${home.path}/notes`, "--hide", "token.txt"],
            [token],
          ],
          ["config hide (absolute)", ["--config", config({ hide: [file.path] })], [file]],
          ["config hide (~)", ["--config", config({ hide: ["~/notes"] })], [token, beside]],
          [
            "config hide (relative to the file's folder)",
            ["--config", config({ hide: ["rel.txt"] })],
            [relative],
          ],
        ];
        for (const [name, options, hidden] of cases) {
          await t.step(`${mode.name}: ${name}`, async () => {
            const out = await readAll(options, mode);
            assertEachDenied(out, [...hidden, key]);
            assertEachRead(out, all.filter((marked) => marked !== key && !hidden.includes(marked)));
          });
        }
        await t.step(`${mode.name}: config show opens a built-in location`, async () => {
          const out = await readAll(["--config", config({ show: ["~/.ssh"] })], mode);
          assertEachRead(out, all);
        });
        await t.step(`${mode.name}: config hide and --show together`, async () => {
          const out = await readAll(
            ["--config", config({ hide: [file.path] }), "--show", "~/.ssh"],
            mode,
          );
          assertEachDenied(out, [file]);
          assertEachRead(out, [token, beside, relative, key]);
        });
      }
    } finally {
      Deno.removeSync(outside, { recursive: true });
      Deno.removeSync(configs, { recursive: true });
    }
  });
});

Deno.test("--show PATH inside a hidden location makes that path alone readable again", async (t) => {
  await withHome(async (home) => {
    const key = home.secret(".ssh");
    const other = {
      path: `${home.path}/.ssh/id_rsa`,
      text: `llmx-test-other-${crypto.randomUUID()}`,
    };
    writeFile(other.path, other.text);
    await t.step("--explain lists it as shown, the folder still hidden", async () => {
      const plan = await explain(home.path, ["--show", "~/.ssh/id_ed25519"]);
      assert.deepEqual(plan.shown, [key.path]);
      assert.ok(plan.hidden.includes(`${home.path}/.ssh`), plan.hidden.join(" "));
    });
    for (const mode of MODES) {
      await t.step(`${mode.name}: the file reads, its neighbour does not`, async () => {
        const out = await sandboxed(home.path, [
          ...mode.flags,
          "--show",
          "~/.ssh/id_ed25519",
          "--",
          ...sh(READ_EACH, key.path, other.path),
        ]);
        assertEachDenied(out, [other]);
        assertEachRead(out, [key]);
      });
    }
  });
});

Deno.test("hidden locations: a writable root holding one, or inside one, is refused (exit 2) until --show", async (t) => {
  await withHome(async (home) => {
    const created = `${home.path}/created-by-the-command`;
    const sub = `${home.path}/.aws/sub`;
    Deno.mkdirSync(sub);
    const outside = scratchDir();
    try {
      // A credential location that is a symlink into a folder given as writable.
      const linkedHome = `${outside}/home`;
      const store = `${outside}/store`;
      Deno.mkdirSync(linkedHome);
      writeFile(`${store}/netrc`, `llmx-test-secret-linked-${crypto.randomUUID()}`);
      Deno.symlinkSync(`${store}/netrc`, `${linkedHome}/.netrc`);
      const cases: {
        name: string;
        home: string;
        options: string[];
        created: string;
        conflict: RegExp;
        show: string[];
      }[] = [
        {
          name: "--cwd ~ -s disk-write-cwd",
          home: home.path,
          options: ["--cwd", home.path, "-s", "disk-write-cwd"],
          created,
          conflict: new RegExp(`--show ${literally(home.path)}/\\.[a-z]`),
          show: ["--show", "~"],
        },
        {
          name: "-s disk-write-folder=~/.aws (a hidden location itself)",
          home: home.path,
          options: ["-s", "disk-write-folder=~/.aws"],
          created: `${home.path}/.aws/created`,
          conflict: new RegExp(`--show ${literally(home.path)}/\\.aws$`),
          show: ["--show", "~/.aws"],
        },
        {
          name: "-s disk-write-folder=~/.aws/sub (inside one)",
          home: home.path,
          options: ["-s", `disk-write-folder=${sub}`],
          created: `${sub}/created`,
          conflict: new RegExp(`--show ${literally(home.path)}/\\.aws$`),
          show: ["--show", "~/.aws"],
        },
        {
          name: "--hide a path inside a writable root",
          home: home.path,
          options: ["-s", `disk-write-folder=${outside}`, "--hide", `${store}/netrc`],
          created: `${outside}/created`,
          conflict: new RegExp(`--show ${literally(store)}/netrc\\)?$`),
          show: ["--show", `${store}/netrc`],
        },
        {
          name: "a writable root holding where ~/.netrc (a symlink) really is",
          home: linkedHome,
          options: ["-s", `disk-write-folder=${store}`],
          created: `${store}/created`,
          conflict: new RegExp(`--show ${literally(store)}/netrc\\)?$`),
          show: ["--show", "~/.netrc"],
        },
      ];
      for (const mode of MODES) {
        for (const c of cases) {
          await t.step(`${mode.name}: ${c.name}`, async () => {
            const out = await sandboxed(c.home, [
              ...mode.flags,
              ...c.options,
              "--",
              "touch",
              c.created,
            ]);
            assert.equal(out.code, 2, out.stderr);
            assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
            assert.match(out.stderr.trim(), /^llmx-sandbox: /);
            assert.match(out.stderr.trim(), c.conflict);
            assert.throws(() => Deno.lstatSync(c.created), Deno.errors.NotFound, "nothing ran");
          });
          await t.step(`${mode.name}: ${c.name}, with ${c.show.join(" ")}: it runs`, async () => {
            try {
              const out = await sandboxed(c.home, [
                ...mode.flags,
                ...c.options,
                ...c.show,
                "--",
                "touch",
                c.created,
              ]);
              assert.equal(out.code, 0, out.stderr);
              assert.ok(Deno.statSync(c.created).isFile);
            } finally {
              if (exists(c.created)) Deno.removeSync(c.created, { recursive: true });
            }
          });
        }
      }
      await t.step(
        "--full-auto with a home folder in /tmp: /tmp holds its credentials",
        async () => {
          const tmpHome = tempDir();
          const project = tempDir();
          try {
            writeFile(`${tmpHome}/.ssh/id_ed25519`, "llmx-test-secret");
            const out = await runCli(["--full-auto", "--", "touch", `${project}/created`], {
              env: cliEnv(tmpHome),
              cwd: project,
            });
            assert.equal(out.code, 2, out.stderr);
            assert.match(out.stderr, new RegExp(`--show ${literally(tmpHome)}/\\.ssh`));
            assert.throws(() => Deno.statSync(`${project}/created`), Deno.errors.NotFound);
          } finally {
            Deno.removeSync(tmpHome, { recursive: true });
            Deno.removeSync(project, { recursive: true });
          }
        },
      );
    } finally {
      Deno.removeSync(outside, { recursive: true });
    }
  });
});

Deno.test("--explain lists the hidden paths of the home folder (canonical) and what --show opened", async (t) => {
  await withHome(async (home) => {
    const inHome = (plan: Explained) =>
      plan.hidden.filter((path) => path.startsWith(`${home.path}/`));
    await t.step("every entry, canonical, sorted", async () => {
      const plan = await explain(home.path, []);
      assert.deepEqual(
        inHome(plan),
        ENTRIES.map(({ entry }) => `${home.path}/${entry}`).sort(),
      );
      assert.deepEqual(plan.shown, []);
    });
    await t.step("--show ~/.aws removes it; --hide adds", async () => {
      const plan = await explain(home.path, ["--show", "~/.aws", "--hide", "~/.bashrc"]);
      assert.deepEqual(
        inHome(plan),
        [...ENTRIES.map(({ entry }) => `${home.path}/${entry}`), `${home.path}/.bashrc`]
          .filter((path) => path !== `${home.path}/.aws`).sort(),
      );
      assert.deepEqual(plan.shown, []);
    });
    await t.step("only the entries that exist", async () => {
      const bare = scratchDir("llmx-test-home-");
      try {
        writeFile(`${bare}/.netrc`, "machine example.invalid");
        const plan = await explain(bare, []);
        assert.deepEqual(plan.hidden.filter((path) => path.startsWith(`${bare}/`)), [
          `${bare}/.netrc`,
        ]);
      } finally {
        Deno.removeSync(bare, { recursive: true });
      }
    });
    await t.step("a home folder given through a symlink: the canonical paths", async () => {
      const outside = scratchDir();
      try {
        Deno.symlinkSync(home.path, `${outside}/home-link`);
        const plan = await explain(`${outside}/home-link`, []);
        assert.deepEqual(
          inHome(plan),
          ENTRIES.map(({ entry }) => `${home.path}/${entry}`).sort(),
        );
        assert.ok(!plan.hidden.some((path) => path.startsWith(outside)));
      } finally {
        Deno.removeSync(outside, { recursive: true });
      }
    });
    await t.step("the system's secrets that exist", async () => {
      const plan = await explain(home.path, []);
      for (const path of ["/etc/shadow", "/etc/gshadow"]) {
        let exists = true;
        try {
          Deno.lstatSync(path);
        } catch {
          exists = false;
        }
        assert.equal(plan.hidden.includes(path), exists, path);
      }
    });
  });
});

Deno.test("hidden locations: a credential location that is a symlink is hidden where it really is", async (t) => {
  const outside = scratchDir();
  try {
    const id = crypto.randomUUID();
    const home = `${outside}/home`;
    const link = `${outside}/home-link`;
    Deno.mkdirSync(home);
    Deno.symlinkSync(home, link);
    const aws = { path: `${outside}/dotfiles/aws/credentials`, text: `llmx-test-aws-${id}` };
    const netrc = { path: `${outside}/dotfiles/netrc`, text: `llmx-test-netrc-${id}` };
    writeFile(aws.path, aws.text);
    writeFile(netrc.path, netrc.text);
    Deno.symlinkSync(`${outside}/dotfiles/aws`, `${home}/.aws`);
    Deno.symlinkSync(netrc.path, `${home}/.netrc`);
    const files = [aws, aws, aws, netrc, netrc];
    const names = [
      aws.path,
      `${home}/.aws/credentials`,
      `${link}/.aws/credentials`,
      netrc.path,
      `${link}/.netrc`,
    ];
    await t.step("positive control: each name reads without the sandbox", async () => {
      assertEachRead(await direct(link, READ_EACH, names), files, names);
    });
    for (const mode of MODES) {
      await t.step(`${mode.name}: by every name, with $HOME a symlink too`, async () => {
        const out = await sandboxed(link, [...mode.flags, "--", ...sh(READ_EACH, ...names)]);
        assertEachDenied(out, files, names);
      });
      await t.step(`${mode.name}: --show through the symlink opens it`, async () => {
        const out = await sandboxed(link, [
          ...mode.flags,
          "--show",
          "~/.aws",
          "--show",
          "~/.netrc",
          "--",
          ...sh(READ_EACH, ...names),
        ]);
        assertEachRead(out, files, names);
      });
    }
  } finally {
    Deno.removeSync(outside, { recursive: true });
  }
});

Deno.test("with restricted reads, hidden locations stay hidden inside a disk-read-folder", async (t) => {
  await withHome(async (home) => {
    const cwd = tempDir();
    try {
      const restricted = ["--restrict-reads", "--cwd", cwd];
      const config = home.ordinary.find((file) => file.path.endsWith("/.config/git/ignore"))!;
      const inConfig = home.secrets.filter((secret) => secret.entry.startsWith(".config/"));
      for (const mode of MODES) {
        await t.step(`${mode.name}: disk-read-folder=~`, async () => {
          const out = await sandboxed(home.path, [
            ...mode.flags,
            ...restricted,
            "-s",
            "disk-read-folder=~",
            "--",
            ...sh(READ_EACH, ...[...home.ordinary, ...home.secrets].map((file) => file.path)),
          ]);
          assertEachRead(out, home.ordinary);
          assertEachDenied(out, home.secrets);
        });
        await t.step(`${mode.name}: positive control: with --show ~/.ssh`, async () => {
          const key = home.secret(".ssh");
          const out = await sandboxed(home.path, [
            ...mode.flags,
            ...restricted,
            "-s",
            "disk-read-folder=~",
            "--show",
            "~/.ssh",
            "--",
            ...sh(READ_EACH, key.path),
          ]);
          assertEachRead(out, [key]);
        });
        await t.step(`${mode.name}: disk-read-folder=~/.config`, async () => {
          const out = await sandboxed(home.path, [
            ...mode.flags,
            ...restricted,
            "-s",
            "disk-read-folder=~/.config",
            "--",
            ...sh(READ_EACH, config.path, ...inConfig.map((file) => file.path)),
          ]);
          assertEachRead(out, [config]);
          assertEachDenied(out, inConfig);
        });
        await t.step(`${mode.name}: disk-read-folder=~/.ssh is refused (exit 2)`, async () => {
          const marker = `${cwd}/created`;
          const out = await sandboxed(home.path, [
            ...mode.flags,
            ...restricted,
            "-s",
            "disk-write-cwd",
            "-s",
            "disk-read-folder=~/.ssh",
            "--",
            "touch",
            marker,
          ]);
          assert.equal(out.code, 2, out.stderr);
          assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
          assert.match(out.stderr, new RegExp(`--show ${literally(home.path)}/\\.ssh`));
          assert.throws(() => Deno.statSync(marker), Deno.errors.NotFound);
        });
      }
    } finally {
      Deno.removeSync(cwd, { recursive: true });
    }
  });
});

Deno.test("supervised: a hidden read is followed by a hint naming --show, which works", async (t) => {
  await withHome(async (home) => {
    const cases: [string, Secret, string[], string[]][] = [
      ["cat of a file in ~/.ssh", home.secret(".ssh"), [], ["cat", home.secret(".ssh").path]],
      ["cat ~/.netrc", home.secret(".netrc"), [], ["cat", home.secret(".netrc").path]],
      [
        "cat of a file in ~/.config/gh",
        home.secret(".config/gh"),
        [],
        ["cat", home.secret(".config/gh").path],
      ],
      [
        "a relative path from --cwd ~",
        home.secret(".aws"),
        ["--cwd", home.path],
        ["cat", ".aws/credentials"],
      ],
    ];
    if (PYTHON3) {
      const npmrc = home.secret(".npmrc");
      cases.push([
        "python3's PermissionError",
        npmrc,
        [],
        ["python3", "-c", "import sys; print(open(sys.argv[1]).read())", npmrc.path],
      ]);
    }
    for (const [name, secret, options, command] of cases) {
      await t.step(name, async () => {
        const supervised = MODES.find((mode) => mode.name === "supervised")!.flags;
        const out = await sandboxed(home.path, [...supervised, ...options, "--", ...command]);
        assert.notEqual(out.code, 0);
        assert.ok(!out.stdout.includes(secret.text));
        const hint = out.stderr.split("\n").find((line) => line.startsWith("llmx-sandbox: hint:"));
        assert.ok(hint, `a hint line: ${out.stderr}`);
        const show = `${home.path}/${secret.entry}`;
        assert.ok(hint.endsWith(`--show ${show}`), hint);
        const again = await sandboxed(home.path, [
          ...supervised,
          ...options,
          "--show",
          show,
          "--",
          ...command,
        ]);
        assert.equal(again.code, 0, again.stderr);
        assert.ok(again.stdout.includes(secret.text));
      });
    }
  });
});

Deno.test("hidden locations: everyday tools work with a home folder full of credentials", async (t) => {
  await withHome(async (home) => {
    const project = tempDir();
    try {
      Deno.writeTextFileSync(
        `${project}/hello.c`,
        '#include <stdio.h>\nint main(void) { puts("hello from C"); return 0; }\n',
      );
      Deno.writeTextFileSync(
        `${project}/Makefile`,
        "hello: hello.c\n\t$(CC) -o $@ hello.c\n\ncheck: hello\n" +
          '\tout=$$(mktemp) && ./hello > "$$out" && cat "$$out" && rm "$$out"\n',
      );
      const bashrc = home.ordinary.find((file) => file.path.endsWith("/.bashrc"))!;
      const tools: {
        name: string;
        skip?: string;
        options: string[];
        command: string[];
        stdout: string | RegExp;
        clean?: string[];
      }[] = [
        {
          name: "git init, add, commit (the committer from ~/.gitconfig)",
          skip: missing("git"),
          options: ["-s", "disk-write-cwd"],
          command: sh(
            "git init -q && git add hello.c && git commit -qm first && git log --format='%an:%s'",
          ),
          stdout: "LLMX Test:first\n",
          clean: [".git"],
        },
        {
          name: "python3 -c",
          skip: NO_PYTHON3,
          options: [],
          command: [
            "python3",
            "-c",
            "import os; print(6 * 7); print(open(os.path.expanduser('~/.bashrc')).read())",
          ],
          stdout: `42\n${bashrc.text}\n\n`,
        },
        {
          name: "node -e",
          skip: NO_NODE,
          options: [],
          command: [
            "node",
            "-e",
            "console.log(6 * 7); console.log(require('fs').readFileSync(" +
            "require('os').homedir() + '/.bashrc', 'utf8'))",
          ],
          stdout: `42\n${bashrc.text}\n\n`,
        },
        {
          name: "npm config get registry (~/.npmrc hidden)",
          skip: NO_NODE ?? missing("npm"),
          options: [],
          command: ["npm", "config", "get", "registry"],
          stdout: /^https?:\/\/\S+\n$/,
        },
        {
          name: "gcc compiles and runs a C file, with --full-auto",
          skip: missing("gcc"),
          options: ["--full-auto"],
          command: sh("gcc -o hello hello.c && ./hello"),
          stdout: "hello from C\n",
          clean: ["hello"],
        },
        {
          name: "make builds and checks, with --full-auto",
          skip: missing("make") ?? missing("cc"),
          options: ["--full-auto"],
          command: ["make", "-s", "check"],
          stdout: "hello from C\n",
          clean: ["hello"],
        },
      ];
      for (const tool of tools) {
        await t.step({
          name: skipReason(tool.name, tool.skip),
          ignore: tool.skip !== undefined,
          async fn(t) {
            for (const mode of MODES) {
              await t.step(mode.name, async () => {
                try {
                  const out = await sandboxed(
                    home.path,
                    [...mode.flags, ...tool.options, "--", ...tool.command],
                    project,
                  );
                  assert.equal(out.code, 0, out.stderr);
                  if (typeof tool.stdout === "string") assert.equal(out.stdout, tool.stdout);
                  else assert.match(out.stdout, tool.stdout);
                  assertNothingRevealed(out, home.secrets, tool.name);
                } finally {
                  // What the tool made, when it ran far enough to make it.
                  for (const path of tool.clean ?? []) {
                    const made = `${project}/${path}`;
                    if (exists(made)) Deno.removeSync(made, { recursive: true });
                  }
                }
              });
            }
          },
        });
      }
    } finally {
      Deno.removeSync(project, { recursive: true });
    }
  });
});

/** Another user's home folder (uid >= 1000 in /etc/passwd) that exists, as root. */
const OTHER_HOME = (() => {
  if (NOT_ROOT) return undefined;
  const mine = [Deno.env.get("HOME")].flatMap((path) => {
    try {
      return path ? [Deno.realPathSync(path)] : [];
    } catch {
      return [];
    }
  });
  for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
    const [, , uid, , , home] = line.split(":");
    if (Number(uid) < 1000 || Number(uid) === 65534 || !home?.startsWith("/")) continue;
    try {
      const real = Deno.realPathSync(home);
      if (Deno.statSync(real).isDirectory && !mine.includes(real) && real !== "/") return real;
    } catch {
      // Not there.
    }
  }
  return undefined;
})();

Deno.test({
  name: skipReason(
    "as root, other users' home folders are hidden as a whole, unless the cwd lies inside",
    NOT_ROOT ?? (OTHER_HOME ? undefined : "no user with uid >= 1000 has a home folder here"),
  ),
  ignore: NOT_ROOT !== undefined || OTHER_HOME === undefined,
  async fn(t) {
    await withHome(async (home) => {
      const id = crypto.randomUUID();
      const file = { path: `${OTHER_HOME}/.llmx-test-${id}`, text: `llmx-test-other-${id}` };
      // A credential location of theirs, made only where there is none, and removed.
      const credential = [".pypirc", ".netrc", ".git-credentials"]
        .map((name) => `${OTHER_HOME}/${name}`)
        .find((path) => {
          try {
            Deno.lstatSync(path);
            return false;
          } catch {
            return true;
          }
        });
      const secret: Marked | undefined = credential
        ? { path: credential, text: `llmx-test-secret-other-${id}` }
        : undefined;
      try {
        Deno.writeTextFileSync(file.path, file.text, { mode: 0o600, createNew: true });
        if (secret) Deno.writeTextFileSync(secret.path, secret.text, { createNew: true });
        await t.step("positive control: root reads it without the sandbox", async () => {
          assertEachRead(await direct(home.path, READ_EACH, [file.path]), [file]);
        });
        await t.step("--explain lists the home folder", async () => {
          assert.ok((await explain(home.path, [])).hidden.includes(OTHER_HOME!));
        });
        for (const mode of MODES) {
          await t.step(`${mode.name}: unreadable by default`, async () => {
            const out = await sandboxed(home.path, [
              ...mode.flags,
              "--",
              ...sh(READ_EACH, file.path),
            ]);
            assertEachDenied(out, [file]);
          });
          await t.step(`${mode.name}: readable with --show ${OTHER_HOME}`, async () => {
            const out = await sandboxed(home.path, [
              ...mode.flags,
              "--show",
              OTHER_HOME!,
              "--",
              ...sh(READ_EACH, file.path),
            ]);
            assertEachRead(out, [file]);
          });
          await t.step(`${mode.name}: readable with the cwd inside it`, async () => {
            const out = await sandboxed(home.path, [
              ...mode.flags,
              "--cwd",
              OTHER_HOME!,
              "--",
              ...sh(READ_EACH, file.path),
            ]);
            assertEachRead(out, [file]);
          });
          await t.step({
            name: skipReason(
              `${mode.name}: with the cwd inside it, its credential locations stay hidden`,
              secret ? undefined : "each candidate credential file exists there already",
            ),
            ignore: !secret,
            async fn() {
              const out = await sandboxed(home.path, [
                ...mode.flags,
                "--cwd",
                OTHER_HOME!,
                "--",
                ...sh(READ_EACH, secret!.path),
              ]);
              assertEachDenied(out, [secret!]);
            },
          });
        }
      } finally {
        Deno.removeSync(file.path);
        if (secret) Deno.removeSync(secret.path);
      }
    });
  },
});

Deno.test({
  name: skipReason(
    "as root, /etc/shadow is unreadable under full read, readable with --show",
    NOT_ROOT && "needs root (a user cannot read /etc/shadow without the sandbox either)",
  ),
  ignore: NOT_ROOT !== undefined,
  async fn(t) {
    await withHome(async (home) => {
      const files = ["/etc/shadow", "/etc/gshadow"].filter((path) => {
        try {
          return Deno.statSync(path).isFile;
        } catch {
          return false;
        }
      });
      // The first line of each, as the marker: what a read would print.
      const marked = files.map((path) => ({
        path,
        text: Deno.readTextFileSync(path).split("\n")[0],
      }));
      assert.ok(marked.length > 0 && marked.every((file) => file.text !== ""), "shadow files");
      await t.step("positive control: root reads them without the sandbox", async () => {
        assertEachRead(await direct(home.path, READ_EACH, files), marked);
      });
      for (const mode of MODES) {
        await t.step(`${mode.name}: unreadable by default`, async () => {
          const out = await sandboxed(home.path, [...mode.flags, "--", ...sh(READ_EACH, ...files)]);
          assertEachDenied(out, marked);
        });
        await t.step(`${mode.name}: readable with --show`, async () => {
          const out = await sandboxed(home.path, [
            ...mode.flags,
            ...files.flatMap((path) => ["--show", path]),
            "--",
            ...sh(READ_EACH, ...files),
          ]);
          assertEachRead(out, marked);
        });
      }
    });
  },
});
