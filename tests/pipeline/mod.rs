//! Issue 9, "one pipeline": the plan is the program (what `xplat plan` prints is what
//! `xplat build` runs), the planner and the assembler agree, both build paths give the same
//! image, and a multi-platform base resolves to the right architecture every time.
mod both_ways;
mod multi_base;
mod plan_is_build;
mod step_kinds;
