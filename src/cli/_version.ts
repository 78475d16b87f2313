// The package version, as `gossip-kv --version` prints it. A constant rather than a read of
// deno.json: the published CLI runs from jsr.io, where no file sits beside it to read.
// tests/cli_commands_test.ts checks it against deno.json and package.json.

/** The version of this package. */
export const VERSION = "0.1.0";
