// Reads a Pulumi stack file the way the CLI hands its config to a program: `namespace:key` -> text, with
// every `secure:` value replaced by a placeholder that is marked secret. Nothing is ever decrypted.
import * as fs from "fs";
import * as YAML from "yaml";

export interface StackConfig {
  config: Record<string, string>;
  secretKeys: string[];
}

export class StackFileError extends Error {}

function isSecure(v: unknown): boolean {
  return !!v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && "secure" in v;
}

/** Replaces nested `{secure: ...}` values with placeholders; reports whether it found any. */
function stripSecure(v: unknown, key: string, path: string): { value: unknown; secret: boolean } {
  if (isSecure(v)) return { value: `secret placeholder for ${key}${path}`, secret: true };
  if (Array.isArray(v)) {
    const items = v.map((x, i) => stripSecure(x, key, `${path}[${i}]`));
    return { value: items.map((x) => x.value), secret: items.some((x) => x.secret) };
  }
  if (v && typeof v === "object") {
    let secret = false;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const r = stripSecure(x, key, `${path}.${k}`);
      out[k] = r.value;
      secret ||= r.secret;
    }
    return { value: out, secret };
  }
  return { value: v, secret: false };
}

export function readStackConfig(file: string, project: string): StackConfig {
  let doc: unknown;
  try {
    doc = YAML.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new StackFileError(`${file}: ${(e as Error).message}`);
  }
  const raw = (doc as { config?: unknown } | null)?.config ?? {};
  if (typeof raw !== "object" || Array.isArray(raw))
    throw new StackFileError(`${file}: 'config' must be a mapping`);
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const key = k.includes(":") ? k : `${project}:${k}`;
    const { value, secret } = stripSecure(v, key, "");
    config[key] = typeof value === "string" ? value : JSON.stringify(value);
    if (secret) secretKeys.push(key);
  }
  return { config, secretKeys: secretKeys.sort() };
}

export function readProjectName(projectFile: string): string {
  const doc = YAML.parse(fs.readFileSync(projectFile, "utf8")) as { name?: string };
  if (!doc?.name) throw new StackFileError(`${projectFile}: no project name`);
  return doc.name;
}
