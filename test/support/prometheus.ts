// Test harness for the monitoring assets: a fake runner install for runner-metrics.sh, and real
// node_exporter + Prometheus processes bound to 127.0.0.1 on free ports, in temp directories.
//
// Every process started here is killed by stop()/MonitoringStack.stop() (call it from an `after`
// hook), by a hard lifetime timer, and as a last resort when the Node process exits.
//
// Dashboard and alert queries can be checked against the same Prometheus with queryAll():
//
//   const stack = await startMonitoringStack({ textfileDir });
//   const outcomes = await stack.queryAll(exprs.map((e) => expandGrafanaVariables(e)));
//   assert.deepStrictEqual(outcomes.filter((o) => o.status !== "success"), []);

import { ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");
export const MONITORING_DIR = path.join(REPO_ROOT, "assets", "monitoring");
export const METRICS_SCRIPT = path.join(MONITORING_DIR, "runner-metrics.sh");
export const RULES_FILE = path.join(MONITORING_DIR, "runner-fleet.rules.yml");
export const RULES_TEST_FILE = path.join(MONITORING_DIR, "runner-fleet.rules.test.yml");
export const SCRAPE_JOB = "runner-fleet";

/** Lifetime after which any process started here is SIGKILLed, whatever the tests do. */
const DEFAULT_MAX_LIFETIME_MS = 120_000;

// ---------------------------------------------------------------------------------------------
// Generic helpers

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
}

export function removeDir(dir: string | undefined): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A free TCP port on 127.0.0.1 (the OS picks it; there is a small race until the server binds). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("could not determine a free port"));
      });
    });
  });
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Shown in the timeout error. */
  what: string;
}

/**
 * Polls `probe` until it returns something other than undefined, for at most `timeoutMs`.
 * Errors thrown by the probe count as "not yet" and the last one is reported on timeout.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined>, opts: WaitOptions): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const intervalMs = opts.intervalMs ?? 200;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let attempt = 0; ; attempt++) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? `; last error: ${lastError.message}` : "";
      throw new Error(
        `timed out after ${timeoutMs} ms (${attempt + 1} attempts) waiting for ${opts.what}${detail}`,
      );
    }
    await sleep(intervalMs);
  }
}

export function commandExists(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v "$1"`, "sh", cmd], { stdio: "ignore" }).status === 0;
}

// ---------------------------------------------------------------------------------------------
// Managed processes

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Last 64 KiB of stdout and stderr, interleaved. */
  output(): string;
  exited(): boolean;
  /** SIGTERM to its process group, then SIGKILL after `graceMs`; resolves when it is gone. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();

/** Children run in their own process group (detached): signal the whole group. */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
    else child.kill(signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}
const dirsToRemove = new Set<string>();
let exitHookInstalled = false;

/** Last resort when a run ends without its after hooks: kill our children, remove our temp dirs. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of running) signalGroup(child, "SIGKILL");
    for (const dir of dirsToRemove) removeDir(dir);
  });
}

export function startProcess(
  name: string,
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; maxLifetimeMs?: number } = {},
): ManagedProcess {
  installExitHook();
  const lifetimeMs = opts.maxLifetimeMs ?? DEFAULT_MAX_LIFETIME_MS;
  // coreutils `timeout` enforces the lifetime even if this Node process dies without cleaning up
  // (SIGINT, crash); it forwards SIGTERM to the command.
  const [cmd, argv] = commandExists("timeout")
    ? ["timeout", ["--kill-after=5", `${Math.ceil(lifetimeMs / 1000)}`, command, ...args]]
    : [command, args];
  const child = spawn(cmd, argv, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  running.add(child);
  let buffer = "";
  const append = (chunk: Buffer): void => {
    buffer += chunk.toString("utf8");
    if (buffer.length > 65_536) buffer = buffer.slice(-65_536);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  let gone = false;
  const exitedPromise = new Promise<void>((resolve) => {
    const done = (): void => {
      gone = true;
      running.delete(child);
      clearTimeout(killer);
      resolve();
    };
    child.once("exit", done);
    child.once("error", (err) => {
      append(Buffer.from(`\n[spawn error] ${err.message}\n`));
      done();
    });
  });
  const killer = setTimeout(() => {
    append(Buffer.from(`\n[harness] ${name} exceeded its lifetime; SIGKILL\n`));
    signalGroup(child, "SIGKILL");
  }, lifetimeMs);
  killer.unref();

  return {
    name,
    child,
    output: () => buffer,
    exited: () => gone || child.exitCode !== null || child.signalCode !== null,
    async stop(graceMs = 5_000): Promise<void> {
      if (gone) return;
      signalGroup(child, "SIGTERM");
      const timer = setTimeout(() => signalGroup(child, "SIGKILL"), graceMs);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/**
 * Starts a server on a free port and waits until `readyPath` answers 200. Retries on another port
 * when the process exits early (port grabbed in between), up to 3 attempts.
 */
async function startServer(
  name: string,
  command: string,
  argsFor: (port: number) => string[],
  readyPath: string,
  timeoutMs: number,
): Promise<{ proc: ManagedProcess; port: number; url: string }> {
  let lastOutput = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const proc = startProcess(name, command, argsFor(port));
    try {
      await waitFor(
        async () => {
          if (proc.exited()) throw new Error(`${name} exited early`);
          return (await httpOk(url + readyPath)) ? true : undefined;
        },
        { what: `${name} on ${url}${readyPath}`, timeoutMs, intervalMs: 100 },
      );
      return { proc, port, url };
    } catch (err) {
      const exitedEarly = proc.exited();
      lastOutput = proc.output();
      await proc.stop();
      // Still running but never ready: a real problem. Exited: maybe the port was taken; retry.
      if (!exitedEarly) throw new Error(`${(err as Error).message}\n--- ${name} output ---\n${lastOutput}`);
    }
  }
  throw new Error(`${name} failed to start after 3 attempts\n--- output ---\n${lastOutput}`);
}

// ---------------------------------------------------------------------------------------------
// node_exporter and Prometheus

export interface NodeExporter {
  url: string;
  port: number;
  /** host:port as it appears in a scrape target. */
  target: string;
  proc: ManagedProcess;
  stop(): Promise<void>;
}

export async function startNodeExporter(opts: {
  textfileDir: string;
  binary?: string;
  extraArgs?: string[];
}): Promise<NodeExporter> {
  const binary = opts.binary ?? "prometheus-node-exporter";
  // The systemd collector needs a running systemd; without it, it logs an error on every scrape.
  const extra = opts.extraArgs ?? ["--no-collector.systemd"];
  const { proc, port, url } = await startServer(
    "node_exporter",
    binary,
    (p) => [
      `--web.listen-address=127.0.0.1:${p}`,
      `--collector.textfile.directory=${opts.textfileDir}`,
      ...extra,
    ],
    "/metrics",
    15_000,
  );
  return { url, port, target: `127.0.0.1:${port}`, proc, stop: () => proc.stop() };
}

export interface FileSdGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** Writes a Prometheus file_sd JSON file atomically (Prometheus watches it). */
export function writeFileSd(file: string, groups: FileSdGroup[]): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(groups, null, 2) + "\n");
  fs.renameSync(tmp, file);
}

export interface Prometheus {
  url: string;
  port: number;
  dir: string;
  configFile: string;
  proc: ManagedProcess;
  stop(): Promise<void>;
}

export async function startPrometheus(opts: {
  /** Files listed under file_sd_configs of job `runner-fleet`. */
  fileSdFiles: string[];
  ruleFiles?: string[];
  /** Scrape and rule evaluation interval, e.g. "1s". */
  interval?: string;
  dir?: string;
  binary?: string;
}): Promise<Prometheus> {
  const dir = opts.dir ?? tempDir("prometheus");
  const interval = opts.interval ?? "1s";
  const config = {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: opts.ruleFiles ?? [],
    scrape_configs: [
      {
        job_name: SCRAPE_JOB,
        file_sd_configs: [{ files: opts.fileSdFiles, refresh_interval: "1s" }],
      },
    ],
  };
  const configFile = path.join(dir, "prometheus.yml");
  // JSON is YAML.
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2) + "\n");
  const dataDir = path.join(dir, "data");
  fs.mkdirSync(dataDir, { recursive: true });
  const { proc, port, url } = await startServer(
    "prometheus",
    opts.binary ?? "prometheus",
    (p) => [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${p}`,
    ],
    "/-/ready",
    30_000,
  );
  return { url, port, dir, configFile, proc, stop: () => proc.stop() };
}

// ---------------------------------------------------------------------------------------------
// HTTP API

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface QueryOutcome {
  expr: string;
  status: "success" | "error";
  /** Set when status is "error" (e.g. "bad_data" for a parse error) or on HTTP failure. */
  errorType?: string;
  error?: string;
  resultType?: string;
  /** Instant vector samples; a scalar/string result is wrapped as one sample with no labels. */
  result: PromSample[];
}

/** Instant query through POST /api/v1/query. Never throws for PromQL errors: see `status`. */
export async function query(baseUrl: string, expr: string, time?: number): Promise<QueryOutcome> {
  const body = new URLSearchParams({ query: expr });
  if (time !== undefined) body.set("time", String(time));
  let res: Response;
  try {
    res = await fetch(`${baseUrl}/api/v1/query`, {
      method: "POST",
      body,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    return { expr, status: "error", errorType: "http", error: (err as Error).message, result: [] };
  }
  const text = await res.text();
  let json: {
    status?: string;
    errorType?: string;
    error?: string;
    data?: { resultType?: string; result?: unknown };
  };
  try {
    json = JSON.parse(text);
  } catch {
    return { expr, status: "error", errorType: "http", error: `HTTP ${res.status}: ${text}`, result: [] };
  }
  if (json.status !== "success") {
    return {
      expr,
      status: "error",
      errorType: json.errorType ?? `http ${res.status}`,
      error: json.error ?? text,
      result: [],
    };
  }
  const resultType = json.data?.resultType;
  const raw = json.data?.result;
  let result: PromSample[] = [];
  if (resultType === "vector" && Array.isArray(raw)) {
    result = raw as PromSample[];
  } else if ((resultType === "scalar" || resultType === "string") && Array.isArray(raw)) {
    result = [{ metric: {}, value: raw as [number, string] }];
  } else if (resultType === "matrix" && Array.isArray(raw)) {
    result = (raw as { metric: Record<string, string>; values: [number, string][] }[]).map((s) => ({
      metric: s.metric,
      value: s.values[s.values.length - 1],
    }));
  }
  return { expr, status: "success", resultType, result };
}

/** Runs every expression as an instant query; one outcome per expression, in order. */
export async function queryAll(baseUrl: string, exprs: string[], time?: number): Promise<QueryOutcome[]> {
  const outcomes: QueryOutcome[] = [];
  for (const expr of exprs) outcomes.push(await query(baseUrl, expr, time));
  return outcomes;
}

/** Throws unless the query succeeds; returns its samples. */
export async function queryOk(baseUrl: string, expr: string): Promise<PromSample[]> {
  const outcome = await query(baseUrl, expr);
  if (outcome.status !== "success")
    throw new Error(`query failed: ${expr}: ${outcome.errorType}: ${outcome.error}`);
  return outcome.result;
}

/** Waits until `expr` returns at least one sample matching `accept` (all samples by default). */
export async function waitForQuery(
  baseUrl: string,
  expr: string,
  accept: (samples: PromSample[]) => boolean = (s) => s.length > 0,
  opts: Partial<WaitOptions> = {},
): Promise<PromSample[]> {
  return waitFor(
    async () => {
      const samples = await queryOk(baseUrl, expr);
      return accept(samples) ? samples : undefined;
    },
    {
      what: opts.what ?? `query ${expr}`,
      timeoutMs: opts.timeoutMs ?? 20_000,
      intervalMs: opts.intervalMs ?? 250,
    },
  );
}

export interface PromRuleGroup {
  name: string;
  file: string;
  rules: {
    name: string;
    query: string;
    type: string;
    health: string;
    lastError?: string;
    duration?: number;
    state?: string;
  }[];
}

export async function getRuleGroups(baseUrl: string): Promise<PromRuleGroup[]> {
  const res = await fetch(`${baseUrl}/api/v1/rules`, { signal: AbortSignal.timeout(10_000) });
  const json = (await res.json()) as { status: string; data?: { groups?: PromRuleGroup[] } };
  if (json.status !== "success") throw new Error(`GET /api/v1/rules: ${JSON.stringify(json)}`);
  return json.data?.groups ?? [];
}

/**
 * Replaces Grafana template variables so a dashboard query can be sent to Prometheus:
 * $__rate_interval, $__interval, $__range (and their ${...} forms) become durations, other
 * $name / ${name} / [[name]] become `vars[name]` or ".*" (regex-safe for =~ matchers).
 */
export function expandGrafanaVariables(expr: string, vars: Record<string, string> = {}): string {
  const builtins: Record<string, string> = {
    __rate_interval: "1m",
    __interval: "15s",
    __range: "1h",
    __interval_ms: "15000",
    __range_s: "3600",
    __range_ms: "3600000",
  };
  const lookup = (name: string): string => vars[name] ?? builtins[name] ?? ".*";
  return expr
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}/g, (_m, name: string) => lookup(name))
    .replace(/\[\[([A-Za-z_][A-Za-z0-9_]*)\]\]/g, (_m, name: string) => lookup(name))
    .replace(/\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, name: string) => lookup(name));
}

// ---------------------------------------------------------------------------------------------
// Alert rules file

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export function loadAlertRules(file: string = RULES_FILE): { group: string; rules: AlertRule[] }[] {
  const doc = parseYaml(fs.readFileSync(file, "utf8")) as {
    groups: { name: string; rules: (AlertRule & { record?: string })[] }[];
  };
  return doc.groups.map((g) => ({
    group: g.name,
    rules: g.rules
      .filter((r) => typeof r.alert === "string")
      .map((r) => ({
        alert: r.alert,
        expr: String(r.expr).trim(),
        for: r.for,
        labels: r.labels ?? {},
        annotations: r.annotations ?? {},
      })),
  }));
}

// ---------------------------------------------------------------------------------------------
// Monitoring stack: node_exporter serving a textfile dir, scraped by Prometheus via file_sd.

export interface MonitoringStack {
  nodeExporter: NodeExporter;
  prometheus: Prometheus;
  fileSdFile: string;
  targetLabels: Record<string, string>;
  query(expr: string): Promise<QueryOutcome>;
  queryAll(exprs: string[]): Promise<QueryOutcome[]>;
  waitForQuery(
    expr: string,
    accept?: (samples: PromSample[]) => boolean,
    opts?: Partial<WaitOptions>,
  ): Promise<PromSample[]>;
  /** Stops both processes and removes the Prometheus directory. Safe to call twice. */
  stop(): Promise<void>;
}

export const DEFAULT_TARGET_LABELS: Record<string, string> = {
  runner: "prod-primary",
  role: "primary",
  stack: "production",
  node: "pve1",
};

export async function startMonitoringStack(opts: {
  textfileDir: string;
  targetLabels?: Record<string, string>;
  ruleFiles?: string[];
  /** Wait until the target is scraped as up (default true). */
  waitForUp?: boolean;
}): Promise<MonitoringStack> {
  const targetLabels = opts.targetLabels ?? DEFAULT_TARGET_LABELS;
  const dir = tempDir("monitoring-stack");
  installExitHook();
  dirsToRemove.add(dir);
  let nodeExporter: NodeExporter | undefined;
  let prometheus: Prometheus | undefined;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all([prometheus?.stop(), nodeExporter?.stop()]);
    removeDir(dir);
    dirsToRemove.delete(dir);
  };
  try {
    nodeExporter = await startNodeExporter({ textfileDir: opts.textfileDir });
    const fileSdFile = path.join(dir, "runner-fleet.targets.json");
    writeFileSd(fileSdFile, [{ targets: [nodeExporter.target], labels: targetLabels }]);
    prometheus = await startPrometheus({ fileSdFiles: [fileSdFile], ruleFiles: opts.ruleFiles, dir });
    const url = prometheus.url;
    if (opts.waitForUp ?? true) {
      await waitForQuery(url, `up{job="${SCRAPE_JOB}"} == 1`, (s) => s.length > 0, {
        what: "the runner-fleet target to be scraped as up",
        timeoutMs: 20_000,
      });
    }
    return {
      nodeExporter,
      prometheus,
      fileSdFile,
      targetLabels,
      query: (expr) => query(url, expr),
      queryAll: (exprs) => queryAll(url, exprs),
      waitForQuery: (expr, accept, o) => waitForQuery(url, expr, accept, o),
      stop,
    };
  } catch (err) {
    const logs = [nodeExporter?.proc.output(), prometheus?.proc.output()].filter(Boolean).join("\n---\n");
    await stop();
    if (err instanceof Error && logs) err.message += `\n--- process output ---\n${logs.slice(-8_000)}`;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Fake runner install for runner-metrics.sh

export type JobResult = "Succeeded" | "SucceededWithIssues" | "Failed" | "Canceled" | "Skipped" | "Abandoned";

/**
 * A Worker log shaped like actions/runner's: "[yyyy-MM-dd HH:mm:ssZ INFO Source] message"
 * (HostTraceListener), with the JobRunner result line when `result` is given.
 */
export function workerLog(start: Date, result?: JobResult, extraLines: string[] = []): string {
  const stamp = (offsetS: number): string =>
    new Date(start.getTime() + offsetS * 1000)
      .toISOString()
      .replace("T", " ")
      .replace(/\.\d{3}Z$/, "Z");
  const lines = [
    `[${stamp(0)} INFO HostContext] Well known directory 'Bin': '/opt/actions-runner/bin'`,
    `[${stamp(0)} INFO Worker] Version: 2.321.0`,
    `[${stamp(1)} INFO JobRunner] Job ID 6c8d1f5e-0b1a-4c55-9f0e-2f6a3d5e7b11`,
    ...extraLines.map((l) => `[${stamp(2)} INFO Worker] ${l}`),
    `[${stamp(3)} INFO JobRunner] Total job steps: 3.`,
    `[${stamp(3)} INFO JobRunner] Run all job steps.`,
  ];
  if (result) {
    lines.push(
      `[${stamp(7)} INFO JobRunner] Finalize job.`,
      `[${stamp(7)} INFO JobRunner] Job result after all job steps finish: ${result}`,
      `[${stamp(7)} INFO JobRunner] Completing the job execution context.`,
      `[${stamp(8)} INFO JobServerQueue] All queue process tasks have been stopped, and all queues are drained.`,
    );
  }
  return lines.join("\n") + "\n";
}

/** Worker log file name for a start time, as HostTraceListener names it. */
export function workerLogName(start: Date): string {
  const iso = start.toISOString(); // 2025-01-01T00:00:00.000Z
  return `Worker_${iso.slice(0, 10).replace(/-/g, "")}-${iso.slice(11, 19).replace(/:/g, "")}-utc.log`;
}

export interface FakeRunnerOptions {
  /** Create the runner home (.service, _diag, _work). false: runner.env points at a missing home. */
  installed?: boolean;
  /** Write runner.env at all (default true). */
  writeEnv?: boolean;
  name?: string;
  version?: string;
  /** undefined: key absent from runner.env. */
  pinnedVersion?: string;
  labels?: string;
  unit?: string;
  /** Extra raw lines appended to runner.env. */
  extraEnv?: string[];
}

export interface ScriptRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface FakeRunner {
  root: string;
  etcDir: string;
  runnerHome: string;
  diagDir: string;
  workDir: string;
  textfileDir: string;
  stateDir: string;
  outFile: string;
  unit: string;
  /** Environment for runner-metrics.sh with all seams pointed into `root`. */
  env: NodeJS.ProcessEnv;
  setServiceActive(active: boolean): void;
  setBusy(busy: boolean): void;
  /** Arguments the stub systemctl was called with, one string per call. */
  systemctlCalls(): string[];
  pgrepCalls(): string[];
  addWorkerLog(start: Date, result?: JobResult, extraLines?: string[]): string;
  run(): ScriptRun;
  readOutput(): string;
  cleanup(): void;
}

export function createFakeRunner(opts: FakeRunnerOptions = {}): FakeRunner {
  const root = tempDir("fake-runner");
  const etcDir = path.join(root, "etc", "runner-fleet");
  const runnerHome = path.join(root, "opt", "actions-runner");
  const diagDir = path.join(runnerHome, "_diag");
  const workDir = path.join(runnerHome, "_work");
  const textfileDir = path.join(root, "textfile");
  const stateDir = path.join(root, "state");
  const stubDir = path.join(root, "stubs");
  const unit = opts.unit ?? `actions.runner.acme-app.${opts.name ?? "prod-primary"}.service`;
  fs.mkdirSync(etcDir, { recursive: true });
  fs.mkdirSync(stubDir, { recursive: true });

  if (opts.installed ?? true) {
    fs.mkdirSync(diagDir, { recursive: true });
    fs.mkdirSync(workDir, { recursive: true });
    fs.writeFileSync(path.join(runnerHome, ".service"), unit + "\n");
  }
  if (opts.writeEnv ?? true) {
    const env = [
      "# written by runner-fleet",
      `RUNNER_NAME=${opts.name ?? "prod-primary"}`,
      `RUNNER_VERSION=${opts.version ?? "2.321.0"}`,
      `RUNNER_LABELS=${opts.labels ?? "self-hosted,linux,x64,deploy"}`,
      `RUNNER_HOME=${runnerHome}`,
      `RUNNER_WORK_DIR=${workDir}`,
    ];
    if (opts.pinnedVersion !== undefined) env.push(`RUNNER_PINNED_VERSION=${opts.pinnedVersion}`);
    env.push(...(opts.extraEnv ?? []));
    fs.writeFileSync(path.join(etcDir, "runner.env"), env.join("\n") + "\n");
  }

  // Stubs: systemctl answers from a state file; pgrep from a flag file. Both log their arguments.
  const serviceState = path.join(stubDir, "service-state");
  const busyFlag = path.join(stubDir, "busy");
  const systemctlLog = path.join(stubDir, "systemctl.calls");
  const pgrepLog = path.join(stubDir, "pgrep.calls");
  const systemctl = path.join(stubDir, "systemctl");
  const pgrep = path.join(stubDir, "pgrep");
  fs.writeFileSync(
    systemctl,
    [
      "#!/bin/sh",
      `echo "$*" >> '${systemctlLog}'`,
      '[ "$1" = is-active ] || exit 64',
      `state=$(cat '${serviceState}' 2>/dev/null || echo inactive)`,
      'echo "$state"',
      '[ "$state" = active ]',
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  fs.writeFileSync(
    pgrep,
    [
      "#!/bin/sh",
      `echo "$*" >> '${pgrepLog}'`,
      `[ -e '${busyFlag}' ] && echo 4242 && exit 0`,
      "exit 1",
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  fs.writeFileSync(serviceState, "active\n");

  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    LANG: "C",
    RUNNER_FLEET_ETC: etcDir,
    TEXTFILE_DIR: textfileDir,
    RUNNER_FLEET_STATE_DIR: stateDir,
    RUNNER_FLEET_SYSTEMCTL: systemctl,
    RUNNER_FLEET_PGREP: pgrep,
  };
  const readLines = (file: string): string[] =>
    fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter(Boolean) : [];

  return {
    root,
    etcDir,
    runnerHome,
    diagDir,
    workDir,
    textfileDir,
    stateDir,
    outFile: path.join(textfileDir, "github_runner.prom"),
    unit,
    env,
    setServiceActive: (active) => fs.writeFileSync(serviceState, active ? "active\n" : "inactive\n"),
    setBusy: (busy) => (busy ? fs.writeFileSync(busyFlag, "") : fs.rmSync(busyFlag, { force: true })),
    systemctlCalls: () => readLines(systemctlLog),
    pgrepCalls: () => readLines(pgrepLog),
    addWorkerLog(start, result, extraLines) {
      fs.mkdirSync(diagDir, { recursive: true });
      const file = path.join(diagDir, workerLogName(start));
      fs.writeFileSync(file, workerLog(start, result, extraLines));
      return file;
    },
    run() {
      const r = spawnSync("bash", [METRICS_SCRIPT], { env, encoding: "utf8", timeout: 30_000 });
      return {
        code: r.status,
        stdout: r.stdout ?? "",
        stderr: (r.stderr ?? "") + (r.error ? String(r.error) : ""),
      };
    },
    readOutput: () => fs.readFileSync(path.join(textfileDir, "github_runner.prom"), "utf8"),
    cleanup: () => removeDir(root),
  };
}

// ---------------------------------------------------------------------------------------------
// Text exposition format parsing (enough for the script's output: no timestamps, no exemplars)

export interface ExpositionSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: ExpositionSample[];
  help: Record<string, string>;
  type: Record<string, string>;
}

export function parseExposition(text: string): Exposition {
  const out: Exposition = { samples: [], help: {}, type: {} };
  for (const [i, line] of text.split("\n").entries()) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === "HELP" ? out.help : out.type)[meta[2]] = meta[3];
      continue;
    }
    if (line.startsWith("#")) continue;
    const head = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (!head) throw new Error(`line ${i + 1}: no metric name: ${line}`);
    const name = head[1];
    let pos = name.length;
    const labels: Record<string, string> = {};
    if (line[pos] === "{") {
      pos++;
      while (line[pos] !== "}") {
        const key = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(pos));
        if (!key) throw new Error(`line ${i + 1}: bad label at ${pos}: ${line}`);
        pos += key[0].length;
        let value = "";
        for (;;) {
          const ch = line[pos];
          if (ch === undefined) throw new Error(`line ${i + 1}: unterminated label value: ${line}`);
          if (ch === '"') break;
          if (ch === "\\") {
            const next = line[pos + 1];
            if (next === "n") value += "\n";
            else if (next === "\\" || next === '"') value += next;
            else throw new Error(`line ${i + 1}: bad escape \\${next}: ${line}`);
            pos += 2;
          } else {
            value += ch;
            pos++;
          }
        }
        pos++; // closing quote
        labels[key[1]] = value;
        if (line[pos] === ",") pos++;
      }
      pos++; // closing brace
    }
    const rest = line.slice(pos);
    const valueMatch = /^ (\S+)$/.exec(rest);
    if (!valueMatch) throw new Error(`line ${i + 1}: bad value part '${rest}': ${line}`);
    const value = Number(valueMatch[1]);
    if (Number.isNaN(value) && valueMatch[1] !== "NaN") throw new Error(`line ${i + 1}: bad number: ${line}`);
    out.samples.push({ name, labels, value });
  }
  return out;
}

/** The value of the one sample with this name whose labels include `labels`; throws otherwise. */
export function sampleValue(exp: Exposition, name: string, labels: Record<string, string> = {}): number {
  const matches = exp.samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (matches.length !== 1) {
    throw new Error(`expected exactly one ${name}${JSON.stringify(labels)}, found ${matches.length}`);
  }
  return matches[0].value;
}
