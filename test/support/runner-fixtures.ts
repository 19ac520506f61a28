// Test helpers for the runner lifecycle scripts: a stub runner tarball whose config.sh / svc.sh
// log every call, a fake systemctl, a loopback HTTP server that records requests, and an async
// script runner (the servers live in this process, so scripts must not be run synchronously).
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";

export const RUNNER_ASSETS = path.resolve(__dirname, "..", "..", "assets", "runner");

/** One call of a stub script, parsed from the tab-separated stub log. */
export interface StubCall {
  script: string;
  /** user the stub ran as */
  user: string;
  /** true when RUNNER_TOKEN was present in the stub's environment */
  tokenInEnv: boolean;
  args: string[];
}

export function readStubLog(logFile: string): StubCall[] {
  if (!fs.existsSync(logFile)) return [];
  return fs
    .readFileSync(logFile, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const [script, user, token, ...args] = line.split("\t");
      return { script, user, tokenInEnv: token === "token-in-env", args };
    });
}

// Shared prologue of every stub: append "<script>\t<user>\t<token marker>\t<args...>" to $RF_STUB_LOG.
const STUB_PROLOGUE = `#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")"
{
  printf '%s\\t%s\\t%s' "$(basename "$0")" "$(id -un)" "\${RUNNER_TOKEN+token-in-env}"
  for a in "$@"; do printf '\\t%s' "$a"; done
  printf '\\n'
} >>"$RF_STUB_LOG"
`;

// Like the real config.sh: refuses root, refuses to configure twice, writes .runner/.credentials.
// RF_STUB_CONFIG_FAIL=1 makes a registration fail.
const CONFIG_SH = `${STUB_PROLOGUE}
if [ "$(id -u)" = 0 ]; then echo "Must not run with sudo" >&2; exit 1; fi
if [ "\${1:-}" = remove ]; then
  rm -f .runner .credentials .credentials_rsaparams
  echo "Runner removed"
  exit 0
fi
if [ -n "\${RF_STUB_CONFIG_FAIL:-}" ]; then echo "Http response code: NotFound" >&2; exit 1; fi
if [ -e .runner ]; then
  echo "Cannot configure the runner because it is already configured." >&2
  exit 1
fi
name=""
while [ $# -gt 0 ]; do
  if [ "$1" = --name ]; then name=$2; fi
  shift
done
printf '{"agentName":"%s"}\\n' "$name" >.runner
printf '{"scheme":"OAuth"}\\n' >.credentials
echo "Settings Saved."
`;

// Like the real svc.sh: needs root, install needs a configured runner and writes .service; the
// enabled/active state lives as marker files in $RF_SYSTEMD_DIR, which the fake systemctl reads.
const SVC_SH = `${STUB_PROLOGUE}
if [ "$(id -u)" != 0 ]; then echo "Must run as sudo" >&2; exit 1; fi
case "\${1:-}" in
  install)
    [ -f .runner ] || { echo "Must configure first. Run ./config.sh" >&2; exit 1; }
    name=$(sed -n 's/.*"agentName":"\\([^"]*\\)".*/\\1/p' .runner)
    unit="actions.runner.stub-$name.service"
    if [ -e "$RF_SYSTEMD_DIR/$unit.enabled" ]; then echo "Failed: error: exists $unit" >&2; exit 1; fi
    echo "$unit" >.service
    touch "$RF_SYSTEMD_DIR/$unit.enabled"
    ;;
  start) unit=$(cat .service); touch "$RF_SYSTEMD_DIR/$unit.active" ;;
  stop) unit=$(cat .service); rm -f "$RF_SYSTEMD_DIR/$unit.active" ;;
  uninstall)
    unit=$(cat .service)
    rm -f "$RF_SYSTEMD_DIR/$unit.active" "$RF_SYSTEMD_DIR/$unit.enabled" .service
    ;;
  *) echo "unknown command $1" >&2; exit 1 ;;
esac
`;

const INSTALL_DEPENDENCIES_SH = `${STUB_PROLOGUE}
if [ "$(id -u)" != 0 ]; then echo "Must run as root" >&2; exit 1; fi
`;

/** Fake systemctl (the RUNNER_FLEET_SYSTEMCTL seam): is-enabled / is-active read $RF_SYSTEMD_DIR. */
export const FAKE_SYSTEMCTL = `#!/usr/bin/env bash
verb=\${1:-}; shift || true
if [ "\${1:-}" = --quiet ]; then shift; fi
case "$verb" in
  is-enabled) test -e "$RF_SYSTEMD_DIR/\${1:-none}.enabled" ;;
  is-active) test -e "$RF_SYSTEMD_DIR/\${1:-none}.active" ;;
  *) echo "fake systemctl: unsupported $verb" >&2; exit 1 ;;
esac
`;

export interface Tarball {
  version: string;
  file: string;
  bytes: Buffer;
  sha256: string;
}

export function sha256(bytes: Buffer | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Builds actions-runner-linux-x64-<version>.tar.gz with stub scripts (tar czf, like the real one: ./ entries). */
export function buildRunnerTarball(workDir: string, version: string): Tarball {
  const src = fs.mkdtempSync(path.join(workDir, `src-${version}-`));
  const files: Record<string, string> = {
    "config.sh": CONFIG_SH,
    "svc.sh": SVC_SH,
    "bin/Runner.Listener": `#!/usr/bin/env bash\necho ${version}\n`,
    "bin/installdependencies.sh": INSTALL_DEPENDENCIES_SH,
    "run.sh": "#!/usr/bin/env bash\nexit 0\n",
  };
  for (const [name, content] of Object.entries(files)) {
    const target = path.join(src, name);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, content, { mode: 0o755 });
  }
  const file = path.join(workDir, `actions-runner-linux-x64-${version}.tar.gz`);
  const tar = spawnSync("tar", ["czf", file, "-C", src, "."], { encoding: "utf8" });
  if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
  fs.rmSync(src, { recursive: true, force: true });
  const bytes = fs.readFileSync(file);
  return { version, file, bytes, sha256: sha256(bytes) };
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export interface Reply {
  status: number;
  body: string | Buffer;
  headers?: Record<string, string>;
}

export interface LoopbackServer {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/** HTTP server on 127.0.0.1:<ephemeral> that records every request and answers through `handler`. */
export async function startServer(handler: (req: RecordedRequest) => Reply): Promise<LoopbackServer> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const recorded = { method: req.method ?? "", url: req.url ?? "", headers: req.headers };
      requests.push(recorded);
      let reply: Reply;
      try {
        reply = handler(recorded);
      } catch (err) {
        reply = { status: 500, body: String(err) };
      }
      res.writeHead(reply.status, reply.headers ?? {});
      res.end(reply.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `bash <script> [args]` with exactly `env` (nothing inherited) and collects its output. */
export function runScript(script: string, args: string[], env: Record<string, string>): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [path.join(RUNNER_ASSETS, script), ...args], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Every entry under `dir` (relative path → type, mode, owner, content hash), for "unchanged" checks. */
export function snapshotTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    const abs = path.join(dir, rel);
    const st = fs.lstatSync(abs);
    const kind = st.isDirectory() ? "d" : st.isSymbolicLink() ? "l" : "f";
    const content = kind === "f" ? sha256(fs.readFileSync(abs)) : "";
    out[rel === "" ? "." : rel] = `${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${content}`;
    if (kind === "d") for (const name of fs.readdirSync(abs).sort()) walk(path.join(rel, name));
  };
  walk("");
  return out;
}

/** Writes an executable file. */
export function writeExecutable(file: string, content: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content, { mode: 0o755 });
}
