// The `node` command's log: one line per event, `<ISO time> <LEVEL> <message>`; errors and
// warnings on stderr, the rest on stdout. Private to src/cli.ts.
import { LOG_LEVELS, type LogLevel } from "./flags.ts";

/** A leveled logger; calls below its level print nothing. */
export interface Logger {
  /** The level it was made with. */
  readonly level: LogLevel;
  /** Something failed. */
  error(message: string): void;
  /** Something needs attention. */
  warn(message: string): void;
  /** Something happened (start, joins, leaves, key reloads). */
  info(message: string): void;
  /** Detail for debugging (suspicions, seed lists, data changes). */
  debug(message: string): void;
}

/** Where the lines go; by default, the console. */
export interface LogSink {
  /** Writes a line of level info or debug. */
  out(line: string): void;
  /** Writes a line of level error or warn. */
  err(line: string): void;
}

const consoleSink: LogSink = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

/** A logger printing the levels up to `level` to `sink`. */
export function createLogger(level: LogLevel, sink: LogSink = consoleSink): Logger {
  const rank = LOG_LEVELS.indexOf(level);
  const at = (l: LogLevel) => (message: string) => {
    if (LOG_LEVELS.indexOf(l) > rank) return;
    const line = `${new Date().toISOString()} ${l.toUpperCase().padEnd(5)} ${message}`;
    if (l === "error" || l === "warn") sink.err(line);
    else sink.out(line);
  };
  return { level, error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") };
}
