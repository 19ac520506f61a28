// Files under assets/ are read once and hashed; the hash goes into `triggers`, so editing a file re-runs
// exactly the commands that use it.
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";

export interface AssetFile {
  /** Path relative to the project root, as Pulumi runs the program from there. */
  relPath: string;
  text: string;
  sha256: string;
}

const ROOT = path.resolve(__dirname, "..");
const cache = new Map<string, AssetFile>();

export function assetFile(relPath: string): AssetFile {
  let found = cache.get(relPath);
  if (!found) {
    const text = fs.readFileSync(path.join(ROOT, relPath), "utf8");
    found = { relPath, text, sha256: sha256(text) };
    cache.set(relPath, found);
  }
  return found;
}

export function sha256(text: string): string {
  return crypto.createHash("sha256").update(text).digest("hex");
}

/** Quotes a value for a POSIX shell command line. */
export function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
