/**
 * The llmx-sandbox CLI, and the compiled binary's entry. When started as the internal
 * supervised child it does only that, before anything else loads.
 *
 * @module
 */

import { CHILD_FLAG, runSupervisedChild } from "./exec/supervised_child.ts";

if (import.meta.main) {
  if (Deno.args[0] === CHILD_FLAG) runSupervisedChild(Deno.args.slice(1));
  const { cliMain } = await import("./cli/cli.ts");
  Deno.exit(await cliMain(Deno.args));
}
