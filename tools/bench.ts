// npm run bench [-- --reps <n>] [--sizes 10,100,1000] [--budget <seconds>] [--profile <runners>] [--no-write]
// Measures the program's evaluation in Pulumi's mock engine (wall time, peak RSS) for fleets of 10, 100 and
// 1000 runners, beside the SDK's own cost to register the same number of bare resources, and writes the
// method and results to docs/benchmark.md and docs/bench-results.json. A benchmark, not a timed test: it
// reports and never fails on the numbers.
//
// Every measurement runs in a fresh child process (this file with `--child`), one evaluation per process, so
// that module caches, JIT state and the heap of one run never flatter the next.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as inspector from "inspector";
import * as os from "os";
import * as path from "path";
import { performance } from "perf_hooks";
import * as v8 from "v8";
import * as YAML from "yaml";
import { installEngine } from "./engine";
import { readProjectName, readStackConfig } from "./stackFile";
import { table } from "./table";

const ROOT = path.resolve(__dirname, "..");
const DOCS = path.join(ROOT, "docs");
const STACK = "bench";
/** The target: the program's marginal cost per resource at most this multiple of the SDK's. */
const TARGET_RATIO = 1.5;
/** Linear growth: the marginal cost per resource of the larger step at most this multiple of the smaller's. */
const LINEARITY_LIMIT = 1.5;
const BARE_TYPE = "bench:index:Bare";
const DEFAULTS = { reps: 3, sizes: [10, 100, 1000], budgetS: 180 };
/** Profiles are kept after the run, for Chrome DevTools; not in docs/ (they are large). */
const PROFILE_DIR = path.join(os.tmpdir(), "runner-fleet-bench-profiles");
/** SDK functions whose total time (callees included) the profile summary always reports. */
const WATCHED = [
  "debuggablePromise",
  "transferProperties",
  "serializeProperty",
  "prepareStackTrace",
  "(garbage collector)",
];

type Kind = "program" | "baseline";

/** What one child process reports about its single evaluation. */
interface Sample {
  kind: Kind;
  resources: number;
  /** Resources per type token. */
  types: Record<string, number>;
  /** Loading the program's modules before evaluation (0 for the baseline, which only needs the SDK). */
  loadMs: number;
  /** From just before the program runs (require of index.ts, or the first bare registration) to the plan. */
  evalMs: number;
  /** Peak resident set size of the whole process, from process.resourceUsage(). */
  maxRssKb: number;
  /** V8 heap in use once the plan is collected (everything the evaluation keeps alive). */
  heapUsedKb: number;
}

// ---------------------------------------------------------------------------------------------------------
// Child: one evaluation, measured from the inside

interface ChildOptions {
  kind: Kind;
  config?: string;
  count?: number;
  profile?: string;
}

/** The program's own modules, as index.ts imports them: loaded before the clock starts. */
function programImports(): string[] {
  const source = fs.readFileSync(path.join(ROOT, "index.ts"), "utf8");
  return [...source.matchAll(/^import[^;]*?from\s+"(\.[^"]+)"/gm)].map((m) => path.join(ROOT, m[1]));
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

function post<T>(session: inspector.Session, method: string, params?: object): Promise<T> {
  return new Promise((resolve, reject) =>
    session.post(method, params ?? {}, (err: Error | null, result?: object) =>
      err ? reject(err) : resolve(result as T),
    ),
  );
}

async function runChild(opts: ChildOptions): Promise<Sample> {
  const project = readProjectName(path.join(ROOT, "Pulumi.yaml"));
  const { config, secretKeys } = opts.config
    ? readStackConfig(opts.config, project)
    : { config: {}, secretKeys: [] };
  const collect = installEngine({ project, stack: STACK, config, secretKeys });

  let loadMs = 0;
  if (opts.kind === "program") {
    const t = performance.now();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    for (const mod of programImports()) require(mod);
    loadMs = performance.now() - t;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pulumi = require("@pulumi/pulumi") as typeof import("@pulumi/pulumi");
  // CustomResource is abstract in the SDK's typings; this subclass adds nothing to a registration.
  class Bare extends pulumi.CustomResource {
    constructor(name: string) {
      super(BARE_TYPE, name, {});
    }
  }

  let session: inspector.Session | undefined;
  if (opts.profile) {
    session = new inspector.Session();
    session.connect();
    await post(session, "Profiler.enable");
    await post(session, "Profiler.setSamplingInterval", { interval: 200 });
    await post(session, "Profiler.start");
  }

  const t0 = performance.now();
  if (opts.kind === "program") {
    // The program reads its config and registers its resources as it loads.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(path.join(ROOT, "index"));
  } else {
    for (let i = 0; i < (opts.count ?? 0); i++) new Bare(`bare-${i}`);
  }
  const plan = await collect();
  const evalMs = performance.now() - t0;

  if (session && opts.profile) {
    const { profile } = await post<{ profile: CpuProfile }>(session, "Profiler.stop");
    fs.writeFileSync(opts.profile, JSON.stringify(profile));
    session.disconnect();
  }
  const types: Record<string, number> = {};
  for (const r of plan.resources) types[r.type] = (types[r.type] ?? 0) + 1;
  return {
    kind: opts.kind,
    resources: plan.resources.length,
    types,
    loadMs,
    evalMs,
    maxRssKb: process.resourceUsage().maxRSS,
    heapUsedKb: Math.round(process.memoryUsage().heapUsed / 1024),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Stack files

/** The production stack file, resized: its two single runners and one pool of n - 2 over four nodes. */
function benchStack(root: string, n: number): unknown {
  const base = YAML.parse(fs.readFileSync(path.join(root, "Pulumi.production.yaml"), "utf8")) as {
    config: Record<string, unknown>;
  };
  const config = { ...base.config };
  const proxmox = config["runner-fleet:proxmox"] as Record<string, unknown>;
  const nodes = ["pve1", "pve2", "pve3", "pve4"];
  config["runner-fleet:proxmox"] = {
    ...proxmox,
    // No capacity limits: the benchmark sizes the fleet, not the cluster.
    nodes: nodes.map((name) => ({ name })),
    vmIdRange: { start: 10000, end: 19999 },
  };
  const singles = config["runner-fleet:runners"] as Record<string, unknown>[];
  config["runner-fleet:runners"] = singles.map((r, i) => ({ ...r, vmId: 10001 + i }));
  const pools = config["runner-fleet:pools"] as Record<string, unknown>[];
  config["runner-fleet:pools"] = [{ ...pools[0], name: "bench-pool", count: n - singles.length, nodes }];
  return { config };
}

// ---------------------------------------------------------------------------------------------------------
// Parent: orchestration and statistics

interface ParentOptions {
  reps: number;
  sizes: number[];
  /** Extra repetitions stop once the run would exceed this many seconds (0: no limit). */
  budgetS: number;
  /** Fleet size to profile, if any. */
  profile?: number;
  write: boolean;
}

/**
 * A copy of the working tree (without node_modules, which it links to), taken when the run starts: every
 * measurement of one run evaluates the same program, even while the files are being edited.
 */
function snapshot(dir: string): string {
  const tree = path.join(dir, "tree");
  const skip = new Set(["node_modules", ".git", "bin", "docs"].map((d) => path.join(ROOT, d)));
  fs.cpSync(ROOT, tree, { recursive: true, filter: (src) => !skip.has(src) });
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(tree, "node_modules"));
  return tree;
}

function spawnChild(root: string, args: string[]): Sample {
  const run = spawnSync(
    process.execPath,
    ["-r", "ts-node/register/transpile-only", path.join(root, "tools", "bench.ts"), "--child", ...args],
    { cwd: root, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
  );
  if (run.status !== 0) {
    throw new Error(`bench child ${args.join(" ")} failed (exit ${run.status}):\n${run.stderr}`);
  }
  const last = run.stdout.trim().split("\n").pop() ?? "";
  return JSON.parse(last) as Sample;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The medians of one kind of evaluation at one fleet size. */
interface Point {
  runners: number;
  resources: number;
  runs: number;
  loadMs: number;
  evalMs: number;
  maxRssKb: number;
  heapUsedKb: number;
  /** Every run, to show the spread behind the medians. */
  evalMsRuns: number[];
  maxRssKbRuns: number[];
}

function summarize(runners: number, samples: Sample[]): Point {
  const counts = new Set(samples.map((s) => s.resources));
  if (counts.size !== 1) throw new Error(`resource count varies between runs: ${[...counts].join(", ")}`);
  return {
    runners,
    resources: samples[0].resources,
    runs: samples.length,
    loadMs: round(median(samples.map((s) => s.loadMs)), 1),
    evalMs: round(median(samples.map((s) => s.evalMs)), 1),
    maxRssKb: median(samples.map((s) => s.maxRssKb)),
    heapUsedKb: median(samples.map((s) => s.heapUsedKb)),
    evalMsRuns: samples.map((s) => round(s.evalMs, 1)),
    maxRssKbRuns: samples.map((s) => s.maxRssKb),
  };
}

/** Marginal cost per resource between two fleet sizes. */
interface Step {
  from: number;
  to: number;
  programUsPerResource: number;
  baselineUsPerResource: number;
  timeRatio: number;
  programKbPerResource: number;
  baselineKbPerResource: number;
  memoryRatio: number;
}

function steps(program: Point[], baseline: Point[]): Step[] {
  const out: Step[] = [];
  for (let i = 1; i < program.length; i++) {
    const [p0, p1, b0, b1] = [program[i - 1], program[i], baseline[i - 1], baseline[i]];
    const dr = p1.resources - p0.resources;
    const pUs = ((p1.evalMs - p0.evalMs) * 1000) / dr;
    const bUs = ((b1.evalMs - b0.evalMs) * 1000) / dr;
    const pKb = (p1.maxRssKb - p0.maxRssKb) / dr;
    const bKb = (b1.maxRssKb - b0.maxRssKb) / dr;
    out.push({
      from: p0.runners,
      to: p1.runners,
      programUsPerResource: round(pUs, 1),
      baselineUsPerResource: round(bUs, 1),
      timeRatio: round(pUs / bUs, 2),
      programKbPerResource: round(pKb, 2),
      baselineKbPerResource: round(bKb, 2),
      memoryRatio: round(pKb / bKb, 2),
    });
  }
  return out;
}

interface Verdict {
  /** The largest step's program/SDK ratio of marginal time per resource is at most TARGET_RATIO. */
  timeTargetMet: boolean;
  memoryTargetMet: boolean;
  /** Marginal time per resource of the largest step / of the step before it. */
  programGrowth: number;
  baselineGrowth: number;
  programLinear: boolean;
}

function verdict(st: Step[]): Verdict {
  const last = st[st.length - 1];
  const prev = st.length > 1 ? st[st.length - 2] : last;
  const programGrowth = round(last.programUsPerResource / prev.programUsPerResource, 2);
  return {
    timeTargetMet: last.timeRatio <= TARGET_RATIO,
    memoryTargetMet: last.memoryRatio <= TARGET_RATIO,
    programGrowth,
    baselineGrowth: round(last.baselineUsPerResource / prev.baselineUsPerResource, 2),
    programLinear: programGrowth <= LINEARITY_LIMIT,
  };
}

// ---------------------------------------------------------------------------------------------------------
// CPU profile summary

interface HotSpot {
  function: string;
  location: string;
  selfMs: number;
  totalMs: number;
}

interface ProfileSummary {
  kind: Kind;
  runners: number;
  resources: number;
  file: string;
  sampledMs: number;
  /** Self time per package (node_modules/<pkg>) or project file. */
  byModule: { module: string; selfMs: number; share: number }[];
  /** Synchronous time inside each resource class's constructor (the SDK's work when a resource is declared). */
  byResourceClass: { class: string; totalMs: number; share: number }[];
  /** Total time (callees included) of the SDK functions in WATCHED. */
  watched: { function: string; totalMs: number; share: number }[];
  /** Self time in the program's own files (this repository, but not this benchmark), as a share. */
  programCodeShare: number;
  /** Functions with the most self time. */
  topSelf: HotSpot[];
  /** The program's own functions (outside node_modules) with the most total time, callees included. */
  topProgram: HotSpot[];
}

/** A profiled file, relative to the evaluated tree when it is in it. */
function fileOf(url: string, root: string): string {
  const file = url.replace(/^file:\/\//, "");
  return file.startsWith(root + path.sep) ? path.relative(root, file) : file;
}

function moduleOf(url: string, root: string): string {
  if (!url) return "(native / V8)";
  const file = fileOf(url, root);
  const nm = file.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const parts = file.slice(nm + "node_modules/".length).split("/");
    return parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  return file.startsWith("node:") ? "(node internals)" : file;
}

function locationOf(node: ProfileNode, root: string): string {
  const { url, lineNumber } = node.callFrame;
  if (!url) return "(native)";
  const file = fileOf(url, root);
  const nm = file.lastIndexOf("node_modules/");
  return `${nm >= 0 ? file.slice(nm + "node_modules/".length) : file}:${lineNumber + 1}`;
}

function isProgramFile(url: string, root: string): boolean {
  const file = fileOf(url, root);
  return (
    !!url &&
    !file.includes("node_modules/") &&
    !file.startsWith("node:") &&
    !path.isAbsolute(file) &&
    file !== path.join("tools", "bench.ts")
  );
}

function summarizeProfile(
  file: string,
  root: string,
  kind: Kind,
  runners: number,
  resources: number,
): ProfileSummary {
  const prof = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, ProfileNode>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parentOf.set(c, n);
  const deltas = prof.timeDeltas ?? [];
  const key = (n: ProfileNode) => `${n.callFrame.functionName || "(anonymous)"}\t${locationOf(n, root)}`;
  const add = (m: Map<string, number>, k: string, ms: number) => m.set(k, (m.get(k) ?? 0) + ms);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const modules = new Map<string, number>();
  const classes = new Map<string, number>();
  const watched = new Map<string, number>();
  /** Functions of the program itself: its own files, but not this benchmark's driver. */
  const programKeys = new Set<string>();
  let sampledMs = 0;
  (prof.samples ?? []).forEach((id, i) => {
    // A sample's time is the gap to the next one.
    const ms = (deltas[i + 1] ?? 0) / 1000;
    const leaf = byId.get(id);
    if (!leaf) return;
    sampledMs += ms;
    const leafName = leaf.callFrame.functionName;
    if (leafName === "(idle)" || leafName === "(program)") {
      add(modules, leafName, ms);
      return;
    }
    add(self, key(leaf), ms);
    add(
      modules,
      leafName === "(garbage collector)" ? "(garbage collector)" : moduleOf(leaf.callFrame.url, root),
      ms,
    );
    const stack: ProfileNode[] = [];
    for (let n: ProfileNode | undefined = leaf; n; n = parentOf.get(n.id)) stack.push(n);
    const seen = new Set<string>();
    for (const n of stack) {
      if (seen.has(key(n))) continue;
      seen.add(key(n));
      add(total, key(n), ms);
      if (isProgramFile(n.callFrame.url, root)) programKeys.add(key(n));
    }
    for (const w of WATCHED) if (stack.some((n) => n.callFrame.functionName === w)) add(watched, w, ms);
    // The class whose constructor called the SDK's CustomResource constructor (through ProviderResource).
    const at = stack.findIndex(
      (n) => n.callFrame.functionName === "CustomResource" && n.callFrame.url.includes("@pulumi/pulumi/"),
    );
    if (at >= 0) {
      let j = at + 1;
      while (stack[j]?.callFrame.functionName === "ProviderResource") j++;
      const cls = stack[j];
      if (cls)
        add(
          classes,
          `${cls.callFrame.functionName || "(anonymous)"} (${moduleOf(cls.callFrame.url, root)})`,
          ms,
        );
    }
  });
  const share = (ms: number) => round(ms / sampledMs, 3);
  const spot = (k: string): HotSpot => {
    const [fn, location] = k.split("\t");
    return {
      function: fn,
      location,
      selfMs: round(self.get(k) ?? 0, 1),
      totalMs: round(total.get(k) ?? 0, 1),
    };
  };
  const desc = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return {
    kind,
    runners,
    resources,
    file,
    sampledMs: round(sampledMs, 1),
    byModule: desc(modules)
      .slice(0, 12)
      .map(([module, ms]) => ({ module, selfMs: round(ms, 1), share: share(ms) })),
    byResourceClass: desc(classes)
      .slice(0, 12)
      .map(([c, ms]) => ({ class: c, totalMs: round(ms, 1), share: share(ms) })),
    watched: WATCHED.map((w) => ({
      function: w,
      totalMs: round(watched.get(w) ?? 0, 1),
      share: share(watched.get(w) ?? 0),
    })),
    programCodeShare: share([...self.entries()].reduce((t, [k, ms]) => (programKeys.has(k) ? t + ms : t), 0)),
    topSelf: desc(self)
      .slice(0, 15)
      .map(([k]) => spot(k)),
    topProgram: desc(total)
      .filter(([k]) => programKeys.has(k))
      .slice(0, 10)
      .map(([k]) => spot(k)),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Reports

interface Results {
  date: string;
  node: string;
  cpu: string;
  cpus: number;
  platform: string;
  heapLimitMb: number;
  reps: number;
  budgetS: number;
  durationS: number;
  stack: string;
  baselineResource: string;
  targetRatio: number;
  linearityLimit: number;
  program: Point[];
  baseline: Point[];
  /** The program's resources per type at the largest fleet size. */
  programTypes: Record<string, number>;
  steps: Step[];
  verdict: Verdict;
  profiles: ProfileSummary[];
}

function markdownTable(headers: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(headers), line(headers.map(() => "---")), ...rows.map(line)].join("\n");
}

const MEASURE_HEADERS = [
  "runners",
  "resources",
  "runs",
  "program eval ms",
  "SDK eval ms",
  "program peak RSS MB",
  "SDK peak RSS MB",
  "program heap MB",
  "program module load ms",
];

function measureRows(r: Results): string[][] {
  const mb = (kb: number) => (kb / 1024).toFixed(0);
  return r.program.map((p, i) => {
    const b = r.baseline[i];
    return [
      String(p.runners),
      String(p.resources),
      String(p.runs),
      p.evalMs.toFixed(0),
      b.evalMs.toFixed(0),
      mb(p.maxRssKb),
      mb(b.maxRssKb),
      mb(p.heapUsedKb),
      p.loadMs.toFixed(0),
    ];
  });
}

const STEP_HEADERS = [
  "step (runners)",
  "program µs/resource",
  "SDK µs/resource",
  "time ratio",
  "program KB/resource",
  "SDK KB/resource",
  "memory ratio",
];

function stepRows(r: Results): string[][] {
  return r.steps.map((s) => [
    `${s.from} → ${s.to}`,
    s.programUsPerResource.toFixed(0),
    s.baselineUsPerResource.toFixed(0),
    `${s.timeRatio.toFixed(2)}x`,
    s.programKbPerResource.toFixed(1),
    s.baselineKbPerResource.toFixed(1),
    `${s.memoryRatio.toFixed(2)}x`,
  ]);
}

function verdictLines(r: Results): string[] {
  const v = r.verdict;
  const last = r.steps[r.steps.length - 1];
  const met = (ok: boolean) => (ok ? "**met**" : "**not met**");
  return [
    `- Time: the program's marginal cost is ${last.programUsPerResource.toFixed(0)} µs per resource against ` +
      `the SDK's ${last.baselineUsPerResource.toFixed(0)} µs (${last.timeRatio.toFixed(2)}x, ` +
      `step ${last.from} → ${last.to} runners); target ≤ ${r.targetRatio}x: ${met(v.timeTargetMet)}.`,
    `- Memory: ${last.programKbPerResource.toFixed(1)} KB of peak RSS per resource against the SDK's ` +
      `${last.baselineKbPerResource.toFixed(1)} KB (${last.memoryRatio.toFixed(2)}x); ` +
      `target ≤ ${r.targetRatio}x: ${met(v.memoryTargetMet)}.`,
    `- Growth: the program's marginal time per resource in the largest step is ${v.programGrowth.toFixed(2)}x ` +
      `that of the step before (the SDK's: ${v.baselineGrowth.toFixed(2)}x); linear (≤ ${r.linearityLimit}x): ` +
      `${met(v.programLinear)}.`,
  ];
}

function profileMarkdown(p: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const code = (s: string) => `\`${s.replace(/\|/g, "\\|")}\``;
  return [
    `### ${p.kind === "program" ? "Program" : "SDK baseline"}, ${p.runners} runners (${p.resources} resources)`,
    "",
    `${p.sampledMs.toFixed(0)} ms sampled (evaluation only); profile: \`${p.file}\`.`,
    "",
    markdownTable(
      ["SDK function (total time, callees included)", "ms", "share"],
      p.watched.map((w) => [code(w.function), w.totalMs.toFixed(0), pct(w.share)]),
    ),
    "",
    ...(p.byResourceClass.length
      ? [
          markdownTable(
            ["resource class (synchronous constructor time)", "ms", "share"],
            p.byResourceClass.map((c) => [code(c.class), c.totalMs.toFixed(0), pct(c.share)]),
          ),
          "",
        ]
      : []),
    markdownTable(
      ["self time by module", "ms", "share"],
      p.byModule.map((m) => [code(m.module), m.selfMs.toFixed(0), pct(m.share)]),
    ),
    "",
    markdownTable(
      ["function (most self time)", "location", "self ms", "total ms"],
      p.topSelf.map((h) => [code(h.function), code(h.location), h.selfMs.toFixed(0), h.totalMs.toFixed(0)]),
    ),
    "",
    ...(p.topProgram.length
      ? [
          markdownTable(
            ["program function (most total time)", "location", "self ms", "total ms"],
            p.topProgram.map((h) => [
              code(h.function),
              code(h.location),
              h.selfMs.toFixed(0),
              h.totalMs.toFixed(0),
            ]),
          ),
          "",
        ]
      : []),
  ].join("\n");
}

const HEADER = `# Benchmark: evaluation cost of the program

<!-- Generated by \`npm run bench\` (tools/bench.ts): change the generator, not this file. -->

What the program costs to evaluate as the fleet grows, beside what the Pulumi SDK itself costs to register
the same number of resources. Target: the program's marginal cost per resource at most ${TARGET_RATIO}x the
SDK's, growing linearly. This is a benchmark, not a timed test: it reports, it never fails on the numbers.

## Method

- **Fleets.** For N = 10, 100 and 1000 runners a stack file is generated (with the \`yaml\` package, in a
  temporary directory) from \`Pulumi.production.yaml\`: the same config, its two single runners, and one
  pool of N - 2 members spread over four nodes without capacity limits; \`vmIdRange\` 10000-19999.
- **Program.** Each evaluation runs in a fresh \`node -r ts-node/register/transpile-only\` process
  (\`tools/bench.ts --child\`), one evaluation per process. It installs the recording mock engine of
  \`tools/engine.ts\`, as \`npm run plan\` does, loads the modules \`index.ts\` imports (timed apart, as
  module load), then times \`require("index")\` until the plan is collected (\`pulumi.runtime.disconnect()\`:
  every registration has reached the mock monitor and been recorded). Peak memory is
  \`process.resourceUsage().maxRSS\` of that process.
- **SDK baseline.** The same, in a fresh process with the same engine, except that instead of the program
  it registers exactly as many resources as the program registered for that N, each a bare custom
  resource: \`new Bare("bare-<i>")\`, a subclass of \`pulumi.CustomResource\` that passes type
  \`${BARE_TYPE}\` and empty inputs \`{}\`, with no parent, provider, dependencies or output
  properties. Empty rather than similar-size inputs, because the target compares the program with the
  SDK's cost for the same number of registrations: everything the program adds per resource (its inputs,
  the output properties of the provider types it uses, components and parents, explicit providers,
  \`dependsOn\`, secrets, \`apply\`) is the program's cost, and the profile below shows what it is made of.
- **Repetitions.** Each size is measured up to ${DEFAULTS.reps} times, program and baseline in turn, and the
  medians are kept (the runs are in \`docs/bench-results.json\`). Smaller fleets come first; a repetition
  is skipped when it would take the whole run past the time budget (${DEFAULTS.budgetS} s by default), so a
  slow large fleet may be measured fewer times: see the "runs" column.
- **Marginal cost.** The slope between consecutive sizes: (time or peak RSS at the larger size - at the
  smaller) / (resources at the larger - at the smaller), for the program and for the baseline, and their
  ratio. Fixed costs (process start, module loading, warm-up) cancel out. The target is judged on the
  largest step (100 → 1000 runners). Growth is linear when the largest step's marginal time per resource is
  at most ${LINEARITY_LIMIT}x the previous step's.
- **Profiles** (\`--profile <runners>\`): one more evaluation of the program and of the baseline at that
  size under the V8 CPU profiler (inspector, 200 µs sampling, evaluation window only). The
  \`.cpuprofile\` files open in Chrome DevTools (Performance tab).

## Rerun

\`\`\`sh
npm run bench                         # rewrites this file and docs/bench-results.json
npm run bench -- --profile 100        # also profile the 100-runner fleet (program and baseline)
npm run bench -- --reps 5 --budget 0  # five runs of every size, however long it takes
npm run bench -- --no-write           # print only
\`\`\`

Run it on an otherwise idle machine: the numbers are wall-clock times.
`;

/** What the profiles say, in words. */
function interpretation(r: Results): string[] {
  const p = r.profiles.find((x) => x.kind === "program");
  const b = r.profiles.find((x) => x.kind === "baseline");
  if (!p || !b) return [];
  const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
  const watched = (s: ProfileSummary, f: string) => s.watched.find((w) => w.function === f)?.share ?? 0;
  const classes = p.byResourceClass
    .slice(0, 3)
    .map((c) => `\`${c.class}\` ${pct(c.share)}`)
    .join(", ");
  return [
    "## Interpretation",
    "",
    `At ${p.runners} runners the program's own code (the files of this repository) accounts for ` +
      `${pct(p.programCodeShare)} of the evaluation's CPU time; the rest is spent in the SDK and what it calls. ` +
      `The SDK's \`debuggablePromise\` takes ${pct(watched(p, "debuggablePromise"))} in total ` +
      `(${pct(watched(b, "debuggablePromise"))} in the baseline): it stores \`new Error().stack\` on every ` +
      "promise the SDK creates, and under ts-node (as under `pulumi up`) source-map-support maps every frame of " +
      `each of those stacks (\`prepareStackTrace\`: ${pct(watched(p, "prepareStackTrace"))}). ` +
      `\`transferProperties\` takes ${pct(watched(p, "transferProperties"))}: for every property a resource ` +
      "class declares (inputs and outputs alike) the SDK builds an Output from four such promises, so a " +
      "resource costs more the more properties its type has, and the bare baseline has none. " +
      `The garbage collector takes ${pct(watched(p, "(garbage collector)"))} ` +
      `(${pct(watched(b, "(garbage collector)"))} in the baseline), growing with the heap those promises ` +
      `and their stack strings keep alive. By resource class (synchronous constructor time): ${classes}.`,
    "",
  ];
}

function renderMarkdown(r: Results): string {
  return [
    HEADER,
    "## Results",
    "",
    `${r.date.slice(0, 10)}; Node ${r.node}; ${r.cpu} (${r.cpus} CPUs); ${r.platform}; V8 heap limit ` +
      `${r.heapLimitMb} MB; medians; the run took ${r.durationS} s.`,
    "",
    markdownTable(MEASURE_HEADERS, measureRows(r)),
    "",
    "Marginal cost per resource:",
    "",
    markdownTable(STEP_HEADERS, stepRows(r)),
    "",
    `Resources of the program at ${r.program[r.program.length - 1].runners} runners, by type:`,
    "",
    markdownTable(
      ["type", "count"],
      Object.entries(r.programTypes)
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .map(([t, c]) => [`\`${t}\``, String(c)]),
    ),
    "",
    "## Verdict",
    "",
    ...verdictLines(r),
    "",
    ...(r.profiles.length
      ? [
          ...interpretation(r),
          "## Where the time goes",
          "",
          "Self time is time spent in a function itself; total time includes its callees.",
          "",
          ...r.profiles.map(profileMarkdown),
        ]
      : ["Run with `--profile <runners>` to see where the time goes.", ""]),
  ].join("\n");
}

async function formatMarkdown(text: string, file: string): Promise<string> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const prettier = require("prettier") as typeof import("prettier");
  const options = (await prettier.resolveConfig(file)) ?? {};
  return prettier.format(text, { ...options, parser: "markdown", filepath: file });
}

function printResults(r: Results): void {
  const out = [
    table(MEASURE_HEADERS, measureRows(r)),
    "",
    table(STEP_HEADERS, stepRows(r)),
    "",
    verdictLines(r).join("\n").replace(/\*\*/g, ""),
  ];
  for (const p of r.profiles) {
    out.push(
      "",
      `${p.kind}, ${p.runners} runners: ${p.sampledMs.toFixed(0)} ms sampled (${p.file})`,
      table(
        ["SDK FUNCTION", "TOTAL_MS", "SHARE"],
        p.watched.map((w) => [w.function, w.totalMs.toFixed(0), `${(w.share * 100).toFixed(1)}%`]),
      ),
      table(
        ["RESOURCE CLASS", "SYNC_MS", "SHARE"],
        p.byResourceClass.map((c) => [c.class, c.totalMs.toFixed(0), `${(c.share * 100).toFixed(1)}%`]),
      ),
      table(
        ["MODULE", "SELF_MS", "SHARE"],
        p.byModule.map((m) => [m.module, m.selfMs.toFixed(0), `${(m.share * 100).toFixed(1)}%`]),
      ),
      table(
        ["FUNCTION", "LOCATION", "SELF_MS", "TOTAL_MS"],
        p.topSelf.map((h) => [h.function, h.location, h.selfMs.toFixed(0), h.totalMs.toFixed(0)]),
      ),
    );
  }
  console.log(out.join("\n"));
}

// ---------------------------------------------------------------------------------------------------------
// Entry points

function parseParentArgs(argv: string[]): ParentOptions {
  const opts: ParentOptions = { ...DEFAULTS, write: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith("--")) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--reps") opts.reps = Number(value());
    else if (a === "--sizes") opts.sizes = value().split(",").map(Number);
    else if (a === "--budget") opts.budgetS = Number(value());
    else if (a === "--profile") opts.profile = Number(value());
    else if (a === "--no-write") opts.write = false;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(opts.reps) || opts.reps < 1) throw new Error("--reps needs a positive integer");
  if (!(opts.budgetS >= 0)) throw new Error("--budget needs a number of seconds (0: no limit)");
  if (opts.sizes.length < 2 || opts.sizes.some((n) => !Number.isInteger(n) || n < 3)) {
    throw new Error("--sizes needs at least two integers >= 3, e.g. 10,100,1000");
  }
  opts.sizes = [...new Set(opts.sizes)].sort((a, b) => a - b);
  if (opts.profile !== undefined && !opts.sizes.includes(opts.profile)) {
    throw new Error(`--profile needs one of the sizes (${opts.sizes.join(", ")})`);
  }
  return opts;
}

async function runParent(opts: ParentOptions): Promise<void> {
  const started = performance.now();
  const elapsedS = () => (performance.now() - started) / 1000;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runner-fleet-bench-"));
  try {
    const root = snapshot(tmp);
    const programSamples = new Map<number, Sample[]>();
    const baselineSamples = new Map<number, Sample[]>();
    const stackFiles = new Map<number, string>();
    for (const n of opts.sizes) {
      const file = path.join(tmp, `Pulumi.bench-${n}.yaml`);
      fs.writeFileSync(file, YAML.stringify(benchStack(root, n)));
      stackFiles.set(n, file);
      const programs: Sample[] = [];
      const baselines: Sample[] = [];
      let pairS = 0;
      for (let rep = 1; rep <= opts.reps; rep++) {
        if (rep > 1 && opts.budgetS > 0 && elapsedS() + pairS > opts.budgetS) {
          process.stderr.write(`bench: ${n} runners: ${rep - 1} run(s); another would exceed the budget\n`);
          break;
        }
        const t = performance.now();
        const p = spawnChild(root, ["program", "--config", file]);
        const b = spawnChild(root, ["baseline", "--count", String(p.resources)]);
        pairS = (performance.now() - t) / 1000;
        programs.push(p);
        baselines.push(b);
        process.stderr.write(
          `bench: ${n} runners, run ${rep}: program ${p.evalMs.toFixed(0)} ms, SDK ${b.evalMs.toFixed(0)} ms ` +
            `(${p.resources} resources each)\n`,
        );
      }
      programSamples.set(n, programs);
      baselineSamples.set(n, baselines);
    }
    const program = opts.sizes.map((n) => summarize(n, programSamples.get(n) ?? []));
    const baseline = opts.sizes.map((n) => summarize(n, baselineSamples.get(n) ?? []));
    const st = steps(program, baseline);

    const profiles: ProfileSummary[] = [];
    if (opts.profile !== undefined) {
      const n = opts.profile;
      const resources = program[opts.sizes.indexOf(n)].resources;
      fs.mkdirSync(PROFILE_DIR, { recursive: true });
      for (const kind of ["program", "baseline"] as const) {
        const file = path.join(PROFILE_DIR, `${kind}-${n}.cpuprofile`);
        const args =
          kind === "program"
            ? ["program", "--config", stackFiles.get(n) ?? ""]
            : ["baseline", "--count", String(resources)];
        process.stderr.write(`bench: profiling the ${kind} at ${n} runners\n`);
        spawnChild(root, [...args, "--profile", file]);
        profiles.push(summarizeProfile(file, root, kind, n, resources));
      }
    }

    const cpus = os.cpus();
    const results: Results = {
      date: new Date().toISOString(),
      node: process.version,
      cpu: cpus[0]?.model.trim() ?? "unknown",
      cpus: cpus.length,
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      heapLimitMb: Math.round(v8.getHeapStatistics().heap_size_limit / 1024 / 1024),
      reps: opts.reps,
      budgetS: opts.budgetS,
      durationS: Math.round(elapsedS()),
      stack: "Pulumi.production.yaml resized: its two single runners + one pool of N - 2 over four nodes",
      baselineResource: `class Bare extends pulumi.CustomResource { super("${BARE_TYPE}", name, {}) }`,
      targetRatio: TARGET_RATIO,
      linearityLimit: LINEARITY_LIMIT,
      program,
      baseline,
      programTypes: programSamples.get(opts.sizes[opts.sizes.length - 1])?.[0]?.types ?? {},
      steps: st,
      verdict: verdict(st),
      profiles,
    };
    printResults(results);
    if (opts.write) {
      fs.mkdirSync(DOCS, { recursive: true });
      fs.writeFileSync(path.join(DOCS, "bench-results.json"), `${JSON.stringify(results, null, 2)}\n`);
      const md = path.join(DOCS, "benchmark.md");
      fs.writeFileSync(md, await formatMarkdown(renderMarkdown(results), md));
      console.log("\nwrote docs/benchmark.md and docs/bench-results.json");
    }
    process.stderr.write(`bench: done in ${elapsedS().toFixed(0)} s\n`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function parseChildArgs(argv: string[]): ChildOptions {
  const kind = argv[0];
  if (kind !== "program" && kind !== "baseline") throw new Error("--child needs program or baseline");
  const opts: ChildOptions = { kind };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--config") opts.config = argv[++i];
    else if (a === "--count") opts.count = Number(argv[++i]);
    else if (a === "--profile") opts.profile = argv[++i];
    else throw new Error(`unknown child argument ${a}`);
  }
  return opts;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--child") {
    const sample = await runChild(parseChildArgs(argv.slice(1)));
    process.stdout.write(`${JSON.stringify(sample)}\n`);
  } else {
    await runParent(parseParentArgs(argv));
  }
}

main().then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);
