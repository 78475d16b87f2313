// Opens a file storage on the directory given, then closes it; prints the error, if any.
// A child process of tests/storage_full_disk_test.ts.
import process from "node:process";
import { fileStorage } from "../src/storage/file.ts";

const storage = fileStorage({ dir: process.argv[process.argv.length - 1]! });
try {
  await storage.load();
  await storage.close();
  console.log("opened");
} catch (error) {
  console.log(String(error));
}
