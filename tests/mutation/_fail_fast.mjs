// Loaded (`--import`) into every test process of a mutation run: a property that fails
// stops at its first counterexample instead of shrinking it. A mutant is killed by the
// failure alone, and shrinking can take longer than the run's timeout.
import fc from "fast-check";

fc.configureGlobal({ ...fc.readConfigureGlobal(), endOnFailure: true });
