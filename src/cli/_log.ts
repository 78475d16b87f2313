// The `agent` command's log: one line per event, errors and warnings on stderr, the rest on
// stdout. As text, `<ISO time> <LEVEL> <message>`; as JSON (`--log-format=json`), one object
// a line: `{"time","level","message",...fields}`, as Consul's -log-json. Private to src/cli.ts.
import { LOG_LEVELS, type LogFormat, type LogLevel } from "./_flags.ts";

/** Details of a log line, for machines: JSON lines carry them as properties. */
export type LogFields = Readonly<Record<string, string | number | boolean | null>>;

/** A leveled logger; calls below its level print nothing. */
export interface Logger {
  /** The level it was made with. */
  readonly level: LogLevel;
  /** Something failed. */
  error(message: string, fields?: LogFields): void;
  /** Something needs attention. */
  warn(message: string, fields?: LogFields): void;
  /** Something happened (start, joins, leaves, key reloads). */
  info(message: string, fields?: LogFields): void;
  /** Detail for debugging (suspicions, seed lists, data changes). */
  debug(message: string, fields?: LogFields): void;
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

/** A logger printing the levels up to `level` to `sink`, as `format` (default text). */
export function createLogger(
  level: LogLevel,
  sink: LogSink = consoleSink,
  format: LogFormat = "text",
): Logger {
  const rank = LOG_LEVELS.indexOf(level);
  const at = (l: LogLevel) => (message: string, fields?: LogFields) => {
    if (LOG_LEVELS.indexOf(l) > rank) return;
    const time = new Date().toISOString();
    const line = format === "json"
      ? JSON.stringify({ ...fields, time, level: l, message })
      : `${time} ${l.toUpperCase().padEnd(5)} ${message}`;
    if (l === "error" || l === "warn") sink.err(line);
    else sink.out(line);
  };
  return { level, error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") };
}
