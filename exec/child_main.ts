/**
 * The module `deno run` starts as the supervised child.
 *
 * @module
 */

import { runSupervisedChild } from "./supervised_child.ts";

if (import.meta.main) runSupervisedChild(Deno.args);
