// How the `agent` command reads SIGINT and SIGTERM. One Ctrl-C in a terminal reaches every
// process of the foreground group, and a task runner (`deno task`, the tsx CLI) forwards its
// own copy as well, so the member sees the same interrupt twice within milliseconds;
// systemd's KillMode=control-group does the same with SIGTERM. Copies that close together
// are one request to leave; a signal that comes later is an impatient second Ctrl-C.
// Private to src/cli.ts.

/** Stop signals this close after the first are copies of it, in ms. */
export const COPY_WINDOW_MS = 1_000;

/** What a stop signal means: the first one, a copy of it, or a second request. */
export type StopMeaning = "leave" | "copy" | "force";

/**
 * The rule, with time given: `signalled(now)` says what a SIGINT or SIGTERM arriving at
 * `now` (ms) means.
 */
export function stopSignals(windowMs = COPY_WINDOW_MS): { signalled(now: number): StopMeaning } {
  let first: number | undefined;
  return {
    signalled(now) {
      if (first === undefined) {
        first = now;
        return "leave";
      }
      return now - first < windowMs ? "copy" : "force";
    },
  };
}
