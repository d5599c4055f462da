// Apart from plan.ts so that the child, which only checks it, does not load the planner.

/** The plan format's version; the child refuses any other. */
export const PLAN_VERSION = 2;
