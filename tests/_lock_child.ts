// Opens a file storage on a directory, as a child process of tests/storage_lock_test.ts
// (Deno, Bun or Node): prints {"ready": pid} once it holds the directory, or
// {"error": message} if it cannot, then waits to be killed.
import process from "node:process";
import { fileStorage } from "../src/storage/file.ts";

const dir = process.argv[process.argv.length - 1]!;
const storage = fileStorage({ dir });
try {
  await storage.load();
  process.stdout.write(JSON.stringify({ ready: process.pid }) + "\n");
  setInterval(() => storage.stats, 60_000); // keeps the storage (and its file) reachable
} catch (error) {
  process.stdout.write(JSON.stringify({ error: (error as Error).message }) + "\n");
  process.exit(1);
}
