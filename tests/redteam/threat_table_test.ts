// The threat table (docs/threats.md) and the red-team suite agree line for line: each row of the
// table in tests/redteam/_threats.ts is in the document, in order, and is tried by exactly one test
// in its family's file; nothing else in the suite is a test of its own.

import assert from "node:assert/strict";
import { THREATS } from "./_threats.ts";

const DOC = new URL("../../docs/threats.md", import.meta.url);
const HEADER = ["Family", "Threat", "Stopped by (each alone)", "Kernel", "Test"];

/** A table row as the README has it. */
function cells(row: (typeof THREATS)[number]): string[] {
  return [row.family, row.threat, row.stoppedBy, row.kernel, row.test];
}

/** The rows of the first Markdown table after a heading, as trimmed cells. */
function tableAfter(markdown: string, heading: string): string[][] {
  const start = markdown.indexOf(`${heading}\n`);
  assert.ok(start >= 0, `docs/threats.md has a "${heading}" heading`);
  const lines = markdown.slice(start).split("\n");
  const first = lines.findIndex((line) => line.startsWith("|"));
  const rows: string[][] = [];
  for (const line of lines.slice(first)) {
    if (!line.startsWith("|")) break;
    rows.push(line.slice(1, line.lastIndexOf("|")).split("|").map((cell) => cell.trim()));
  }
  return rows;
}

Deno.test("the threat table of docs/threats.md is the red-team suite's, row for row", () => {
  const rows = tableAfter(Deno.readTextFileSync(DOC), "# Threats and the red-team suite");
  const [header, separator, ...body] = rows;
  const expected = THREATS.map(cells);
  const markdown = [HEADER, ...expected].map((row) => `| ${row.join(" | ")} |`).join("\n");
  assert.deepEqual(header, HEADER, `the table's header; expected:\n${markdown}`);
  assert.ok(separator.every((cell) => /^:?-+:?$/.test(cell)), "a separator line");
  assert.deepEqual(
    body,
    expected,
    `the table, in order (run deno fmt after pasting):\n${markdown}`,
  );
});

Deno.test("each threat is tried by exactly one test, in its family's file", async (t) => {
  const ids = new Set<string>();
  for (const row of THREATS) {
    await t.step(row.id, () => {
      assert.ok(!ids.has(row.id), `id ${row.id} is unique`);
      ids.add(row.id);
      const source = Deno.readTextFileSync(new URL(`./${row.family}_test.ts`, import.meta.url));
      const uses = source.match(new RegExp(`threatTest\\(\\s*"${row.id}"`, "g")) ?? [];
      assert.equal(uses.length, 1, `threatTest("${row.id}", ...) in ${row.family}_test.ts`);
    });
  }
  assert.equal(new Set(THREATS.map((row) => row.test)).size, THREATS.length, "names are unique");
});

Deno.test("the suite's files register their tests through the table only", () => {
  const families = new Set(THREATS.map((row) => `${row.family}_test.ts`));
  for (const entry of Deno.readDirSync(new URL(".", import.meta.url))) {
    if (!entry.name.endsWith("_test.ts") || entry.name === "threat_table_test.ts") continue;
    assert.ok(families.has(entry.name), `${entry.name} is a family of the table`);
    const source = Deno.readTextFileSync(new URL(`./${entry.name}`, import.meta.url));
    assert.doesNotMatch(source, /Deno\.test\(/, `${entry.name} registers with threatTest()`);
  }
});
