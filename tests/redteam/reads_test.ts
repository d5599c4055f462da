// Red team, reads: what full read hides (credential locations; other terminals are in
// terminal_test.ts) stays unreadable by every path, and restricted reads cannot be widened by
// how the program is named. Every secret is a file this test made in a temporary folder.

import assert from "node:assert/strict";
import { exists, MODES, run, runCli, tempDir } from "../_helpers.ts";
import { SandboxPolicy } from "../../policy/sandbox_policy.ts";
import {
  assertLayers,
  firstReason,
  landlockBelow,
  NO_GCC,
  NOT_ROOT,
  probe,
  threatTest,
} from "./_redteam.ts";

const SECRET = `llmx-secret-${crypto.randomUUID()}`;

/** A hidden folder holding a key, a readable folder beside it, both removed afterwards. */
async function withHidden(
  fn: (hidden: string, key: string, open: string) => Promise<void>,
): Promise<void> {
  const base = tempDir();
  try {
    const hidden = `${base}/.ssh`;
    Deno.mkdirSync(hidden);
    Deno.writeTextFileSync(`${hidden}/id_ed25519`, `${SECRET}\n`);
    const open = `${base}/work`;
    Deno.mkdirSync(open);
    await fn(hidden, `${hidden}/id_ed25519`, open);
  } finally {
    Deno.removeSync(base, { recursive: true });
  }
}

threatTest("hidden-secret", firstReason(NO_GCC, landlockBelow(2)), async (t) => {
  await withHidden(async (hidden, key, open) => {
    // Full read, with the folder hidden as the built-in credential locations are.
    const policy = SandboxPolicy.readOnlyWithWritableRoots([open]).withPaths({ hide: [hidden] });
    Deno.symlinkSync(key, `${open}/link-to-key`);
    Deno.symlinkSync(hidden, `${open}/link-to-folder`);
    const paths: [string, string][] = [
      ["directly", key],
      ["through /proc/self/root", `/proc/self/root${key}`],
      ["through a symlink to it", `${open}/link-to-key`],
      ["through a symlink to its folder", `${open}/link-to-folder/id_ed25519`],
      ["with ..", `${hidden}/../.ssh/id_ed25519`],
    ];
    for (const [name, path] of paths) {
      await t.step(name, async (t) => {
        await assertLayers(t, {
          policy,
          args: ["read", path],
          worked: SECRET,
          denials: [
            { layers: ["landlock"], refused: "open EACCES" },
            { layers: "all", refused: "open EACCES" },
          ],
        });
      });
    }
    await t.step("a new hard link in a writable root", async (t) => {
      const link = `${open}/hard-link`;
      await assertLayers(t, {
        policy,
        args: ["link", key, link],
        worked: "linked",
        reached: () => Deno.removeSync(link),
        unchanged: () => assert.ok(!exists(link)),
        // The link would give the file rights it does not have where it is: Landlock's refer.
        denials: [
          { layers: ["landlock"], refused: "link EXDEV" },
          { layers: "all", refused: "link EXDEV" },
        ],
      });
    });
  });
});

threatTest("program-prefix", NO_GCC, async (t) => {
  // The secret lies outside every readable root: beside the cwd, in a temporary folder.
  const outside = tempDir();
  const cwd = tempDir();
  try {
    const secret = `${outside}/secret`;
    Deno.writeTextFileSync(secret, `${SECRET}\n`);
    Deno.symlinkSync("/", `${cwd}/tools`);
    // A program of its own in a shared folder: only its file may be readable, not the folder.
    Deno.mkdirSync(`${outside}/bin`);
    Deno.copyFileSync(probe(), `${outside}/bin/tool`);
    const names: [string, string[]][] = [
      ["/proc/self/root/bin/sh", ["/proc/self/root/bin/sh", "-c", `cat ${secret}`]],
      ["a symlink to / in the cwd", ["tools/bin/sh", "-c", `cat ${secret}`]],
      ["a program in a shared folder", [`${outside}/bin/tool`, "read", secret]],
    ];
    for (const [name, command] of names) {
      await t.step(`positive control: ${name} reads the secret without the sandbox`, async () => {
        const out = await run(
          command[0].startsWith("/") ? command[0] : `${cwd}/${command[0]}`,
          command.slice(1),
        );
        assert.match(out.stdout, new RegExp(SECRET));
      });
      for (const mode of MODES) {
        await t.step(`${mode.name}: positive control: ${name}, full read`, async () => {
          const out = await runCli([...mode.flags, "--cwd", cwd, "-q", "--", ...command]);
          assert.match(out.stdout, new RegExp(SECRET), out.stderr);
        });
        await t.step(`${mode.name}: ${name}, restricted reads: denied`, async () => {
          const out = await runCli([
            ...mode.flags,
            "--restrict-reads",
            "--cwd",
            cwd,
            "-q",
            "--",
            ...command,
          ]);
          assert.doesNotMatch(out.stdout, new RegExp(SECRET));
          assert.match(out.stdout + out.stderr, /Permission denied|EACCES/);
        });
      }
      await t.step(`${name}: --explain grants neither /, a home nor a shared folder`, async () => {
        const out = await runCli(["--explain", "--restrict-reads", "--cwd", cwd, "--", ...command]);
        assert.equal(out.code, 0, out.stderr);
        const roots: string[] = JSON.parse(out.stdout).readableRoots;
        for (const wide of ["/", "/tmp", outside, Deno.env.get("HOME") ?? "/root"]) {
          assert.ok(!roots.includes(Deno.realPathSync(wide)), `${wide} in ${roots.join(" ")}`);
        }
      });
    }
  } finally {
    Deno.removeSync(outside, { recursive: true });
    Deno.removeSync(cwd, { recursive: true });
  }
});

threatTest("other-homes", firstReason(NOT_ROOT, landlockBelow(2)), async (t) => {
  // A home /etc/passwd does not list, as an LDAP user's is: a folder of this test's in /home,
  // with a file anyone may read (capabilities are dropped: only its mode lets root in).
  const home = `/home/llmx-redteam-${crypto.randomUUID()}`;
  Deno.mkdirSync(`${home}/.config`, { recursive: true });
  const notes = `${home}/.config/notes.txt`;
  Deno.writeTextFileSync(notes, `${SECRET}\n`);
  Deno.chmodSync(notes, 0o644);
  try {
    await t.step("positive control: root reads it without the sandbox", async () => {
      const out = await run("cat", [notes]);
      assert.equal(out.stdout, `${SECRET}\n`);
    });
    for (const mode of MODES) {
      await t.step(`${mode.name}: unreadable`, async () => {
        const out = await runCli(["-q", ...mode.flags, "--cwd", "/", "--", "cat", notes]);
        assert.notEqual(out.code, 0);
        assert.match(out.stderr, /Permission denied/);
        assert.doesNotMatch(out.stdout, new RegExp(SECRET));
      });
    }
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

const NO_SHADOW_BACKUP = exists("/etc/shadow-") ? undefined : "no /etc/shadow- here";

threatTest(
  "shadow-backups",
  firstReason(NOT_ROOT, NO_SHADOW_BACKUP, landlockBelow(2)),
  async (t) => {
    // Read, never written: what matters is that its first line reaches nobody.
    await t.step("positive control: root reads it without the sandbox", async () => {
      const out = await run("head", ["-c", "1", "/etc/shadow-"]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout.length, 1);
    });
    for (const mode of MODES) {
      await t.step(`${mode.name}: unreadable`, async () => {
        const out = await runCli([
          "-q",
          ...mode.flags,
          "--cwd",
          "/",
          "--",
          "head",
          "-c",
          "1",
          "/etc/shadow-",
        ]);
        assert.notEqual(out.code, 0);
        assert.match(out.stderr, /Permission denied/);
        assert.equal(out.stdout, "");
      });
    }
  },
);
