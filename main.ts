/**
 * The llmx-sandbox CLI, and the compiled binary's entry.
 *
 * @module
 */

// First: when the compiled binary is started as the internal supervised child, this import
// takes over before anything else loads.
import "./exec/supervised_child.ts";

if (import.meta.main) {
  const { cliMain } = await import("./cli/cli.ts");
  Deno.exit(await cliMain(Deno.args));
}
