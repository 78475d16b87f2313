// `gossip-kv watch`: follows a member's /events stream (Server-Sent Events) and prints one
// line per change, until interrupted. Private to src/cli.ts.
import { call, type Command, expectOk, Failure, KEY_VIEW_HELP, keyView } from "./_client.ts";

/** A change as the member's `change` event carries it. */
interface ChangeEvent {
  key: string;
  value: unknown;
  deleted: boolean;
  origin: "local" | "remote";
  writer: string;
  wall: number;
}

/** Splits a Server-Sent Events byte stream into events (`event:` name and `data:` text). */
export async function* serverSentEvents(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = "";
  const reader = body.getReader();
  // Not every runtime ends a body being read when the request's signal aborts: cancel it.
  const cancel = () => void reader.cancel().catch(() => {});
  signal.addEventListener("abort", cancel);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.search(/\r?\n\r?\n/)) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
        let event = "message";
        const data: string[] = [];
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon === -1 ? line : line.slice(0, colon);
          const text = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event = text;
          else if (field === "data") data.push(text);
        }
        if (data.length > 0) yield { event, data: data.join("\n") };
      }
    }
  } finally {
    signal.removeEventListener("abort", cancel);
    reader.releaseLock();
  }
}

/** `gossip-kv watch`. */
export const watch: Command = {
  name: "watch",
  summary: "print one line per change as it happens, until interrupted",
  follows: true,
  help: [
    "Usage: gossip-kv watch [--prefix=P] [--format=text|json] [flags]",
    "",
    "Follows the changes the member at --http-addr applies, its own writes and those it hears",
    "from the others, one line each: time, `set KEY = VALUE` or `del KEY`, and the writer. With",
    "--format=json, one JSON object a line: key, value, deleted, origin, writer, wall.",
    "Runs until interrupted (exit 0); exits 1 if the member ends the stream.",
    "",
    KEY_VIEW_HELP,
  ].join("\n"),
  async run(args, io) {
    const view = keyView(this, args, io);
    if (view === undefined) return 0;
    const { to, prefix, how } = view;
    const query = prefix === undefined ? "" : `?${new URLSearchParams({ prefix })}`;
    if (io.signal.aborted) return 0;
    try {
      const res = await call(to, "GET", `/events${query}`, { signal: io.signal });
      await expectOk(res, "GET /events");
      if (!res.body) throw new Failure("The member answered /events without a stream");
      for await (const { event, data } of serverSentEvents(res.body, io.signal)) {
        if (event !== "change") continue;
        const change = JSON.parse(data) as ChangeEvent;
        if (how === "json") {
          io.out(JSON.stringify(change));
          continue;
        }
        const time = new Date(change.wall).toISOString();
        io.out(
          change.deleted
            ? `${time} del ${JSON.stringify(change.key)} (by ${change.writer})`
            : `${time} set ${JSON.stringify(change.key)} = ${
              JSON.stringify(change.value)
            } (by ${change.writer})`,
        );
      }
    } catch (error) {
      if (io.signal.aborted) return 0;
      throw error;
    }
    if (io.signal.aborted) return 0;
    throw new Failure(`The member at ${to.base} ended the event stream (did it stop?)`);
  },
};
