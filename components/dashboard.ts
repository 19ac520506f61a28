// Grafana dashboard of the runner fleet for one stack, as typed data. Series come from
// node_exporter (textfile collector: assets/monitoring/runner-metrics.sh) scraped by job
// "runner-fleet" through file_sd targets labelled runner, role, stack and node.
//
// Pure functions only: no Pulumi types, no I/O. dashboardJson() is what gets deployed.

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export interface DatasourceRef {
  type: "prometheus";
  uid: string;
}

export interface GridPos {
  h: number;
  w: number;
  x: number;
  y: number;
}

export interface Target {
  refId: string;
  datasource: DatasourceRef;
  editorMode: "code";
  expr: string;
  legendFormat: string;
  /** Instant queries (tables) or range queries (graphs, stats). */
  instant: boolean;
  range: boolean;
  format: "time_series" | "table";
}

export interface ThresholdStep {
  color: string;
  /** null: the base step. */
  value: number | null;
}

export interface FieldDefaults {
  unit?: string;
  min?: number;
  max?: number;
  decimals?: number;
  color?: JsonObject;
  thresholds?: { mode: "absolute" | "percentage"; steps: ThresholdStep[] };
  mappings?: JsonObject[];
  custom?: JsonObject;
}

export interface FieldOverride {
  matcher: { id: "byName"; options: string };
  properties: { id: string; value: JsonValue }[];
}

export interface Transformation {
  id: string;
  options: JsonObject;
}

export type PanelType = "stat" | "timeseries" | "table";

export interface Panel {
  id: number;
  type: PanelType;
  title: string;
  description: string;
  datasource: DatasourceRef;
  gridPos: GridPos;
  targets: Target[];
  fieldConfig: { defaults: FieldDefaults; overrides: FieldOverride[] };
  options: JsonObject;
  transformations: Transformation[];
}

export interface QueryVariable {
  type: "query";
  name: string;
  label: string;
  datasource: DatasourceRef;
  /** Grafana's Prometheus variable query, e.g. label_values(metric{...}, label). */
  query: string;
  definition: string;
  /** 2: on time range change. */
  refresh: 1 | 2;
  multi: boolean;
  includeAll: boolean;
  /** Sent instead of the list of all values when "All" is selected. */
  allValue: string;
  current: { selected: boolean; text: string[]; value: string[] };
  options: JsonObject[];
  regex: string;
  /** 1: alphabetical ascending. */
  sort: number;
  hide: 0 | 1 | 2;
}

export interface Dashboard {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  timezone: string;
  editable: boolean;
  /** 1: shared crosshair. */
  graphTooltip: 0 | 1 | 2;
  time: { from: string; to: string };
  refresh: string;
  schemaVersion: number;
  fiscalYearStartMonth: number;
  liveNow: boolean;
  weekStart: string;
  links: JsonObject[];
  annotations: { list: JsonObject[] };
  templating: { list: QueryVariable[] };
  panels: Panel[];
}

export const SCHEMA_VERSION = 39;
export const SCRAPE_JOB = "runner-fleet";
const GRID_WIDTH = 24;

/** Values for Grafana's built-in variables when a query is run directly against Prometheus. */
export const BUILTIN_VARIABLE_VALUES: Readonly<Record<string, string>> = {
  __rate_interval: "5m",
  __interval: "1m",
  __interval_ms: "60000",
  __range: "1h",
  __range_s: "3600",
  __range_ms: "3600000",
};

// ---------------------------------------------------------------------------------------------
// Building blocks

function promString(s: string): string {
  return JSON.stringify(s); // a PromQL double-quoted string uses the same escapes for \ and "
}

interface PanelSpec {
  type: PanelType;
  title: string;
  description: string;
  w: number;
  h: number;
  targets: { expr: string; legend?: string; table?: boolean }[];
  defaults?: FieldDefaults;
  overrides?: FieldOverride[];
  options?: JsonObject;
  transformations?: Transformation[];
}

const THRESHOLDS_NEUTRAL: FieldDefaults["thresholds"] = {
  mode: "absolute",
  steps: [{ color: "green", value: null }],
};

function thresholdsBadAbove(value: number): FieldDefaults["thresholds"] {
  return {
    mode: "absolute",
    steps: [
      { color: "green", value: null },
      { color: "red", value },
    ],
  };
}

function statOptions(): JsonObject {
  return {
    colorMode: "value",
    graphMode: "area",
    justifyMode: "auto",
    orientation: "auto",
    reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false },
    showPercentChange: false,
    textMode: "auto",
    wideLayout: true,
  };
}

function timeseriesOptions(): JsonObject {
  return {
    legend: { calcs: [], displayMode: "list", placement: "bottom", showLegend: true },
    tooltip: { mode: "multi", sort: "none" },
  };
}

function timeseriesCustom(stacked = false): JsonObject {
  return {
    drawStyle: "line",
    fillOpacity: stacked ? 30 : 10,
    lineWidth: 1,
    showPoints: "never",
    spanNulls: false,
    stacking: { group: "A", mode: stacked ? "normal" : "none" },
  };
}

function tableOptions(sortBy: string): JsonObject {
  return {
    cellHeight: "sm",
    footer: { countRows: false, fields: "", reducer: ["sum"], show: false },
    showHeader: true,
    sortBy: [{ desc: false, displayName: sortBy }],
  };
}

function valueMapping(map: Record<string, { text: string; color: string }>): JsonObject {
  const options: JsonObject = {};
  Object.entries(map).forEach(([value, m], index) => {
    options[value] = { color: m.color, index, text: m.text };
  });
  return { options, type: "value" };
}

function override(field: string, properties: Record<string, JsonValue>): FieldOverride {
  return {
    matcher: { id: "byName", options: field },
    properties: Object.entries(properties).map(([id, value]) => ({ id, value })),
  };
}

/** Places panels left to right in rows of GRID_WIDTH; a row is as tall as its tallest panel. */
function layout(rows: PanelSpec[][], datasource: DatasourceRef): Panel[] {
  const panels: Panel[] = [];
  let y = 0;
  for (const row of rows) {
    let x = 0;
    let height = 0;
    for (const spec of row) {
      if (x + spec.w > GRID_WIDTH) throw new Error(`dashboard row too wide at panel '${spec.title}'`);
      panels.push({
        id: panels.length + 1,
        type: spec.type,
        title: spec.title,
        description: spec.description,
        datasource: { ...datasource },
        gridPos: { h: spec.h, w: spec.w, x, y },
        targets: spec.targets.map((t, i) => ({
          refId: String.fromCharCode(65 + i),
          datasource: { ...datasource },
          editorMode: "code",
          expr: t.expr,
          legendFormat: t.legend ?? "__auto",
          instant: t.table === true,
          range: t.table !== true,
          format: t.table === true ? "table" : "time_series",
        })),
        fieldConfig: { defaults: spec.defaults ?? {}, overrides: spec.overrides ?? [] },
        options: spec.options ?? {},
        transformations: spec.transformations ?? [],
      });
      x += spec.w;
      height = Math.max(height, spec.h);
    }
    y += height;
  }
  return panels;
}

// ---------------------------------------------------------------------------------------------
// The dashboard

/** Grafana dashboard uids: at most 40 characters of [A-Za-z0-9_-]. */
function dashboardUid(stack: string): string {
  const uid = `runner-fleet-${stack}`;
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(uid)) {
    throw new Error(`dashboard uid '${uid}' is not a valid Grafana uid (at most 40 of [A-Za-z0-9_-])`);
  }
  return uid;
}

export function buildDashboard(opts: { stack: string; datasourceUid: string }): Dashboard {
  const { stack, datasourceUid } = opts;
  if (stack === "") throw new Error("buildDashboard: stack is empty");
  if (datasourceUid === "") throw new Error("buildDashboard: datasourceUid is empty");
  const uid = dashboardUid(stack);
  const ds: DatasourceRef = { type: "prometheus", uid: datasourceUid };

  // Every selector: this stack's scrape job, filtered by the runner variable.
  const sel = `job=${promString(SCRAPE_JOB)},stack=${promString(stack)},runner=~"$runner"`;
  const m = (metric: string, extra = ""): string => `${metric}{${sel}${extra ? "," + extra : ""}}`;
  const up = (v: 0 | 1): string => `(${m("github_runner_up")} == ${v})`;
  const offline = `(${up(0)} or (${m("up")} == 0))`;
  // Status table: one row per runner; each query carries the same labels so "merge" joins them.
  const perRunner = (expr: string): string =>
    `max by (runner, role, node, version) (\n  (${expr})\n  * on (instance) group_left (version) ${m("github_runner_info")}\n)`;
  const lastJobEnd = `(${m("github_runner_last_job_end_timestamp_seconds")} > 0)`;

  const rows: PanelSpec[][] = [
    [
      {
        type: "stat",
        title: "Runners online",
        description: "Runners whose service is active (github_runner_up == 1).",
        w: 4,
        h: 4,
        targets: [{ expr: `count(${up(1)}) or vector(0)`, legend: "online" }],
        defaults: { thresholds: THRESHOLDS_NEUTRAL, unit: "none", decimals: 0 },
        options: statOptions(),
      },
      {
        type: "stat",
        title: "Runners offline",
        description: "Runners whose service is inactive or whose exporter cannot be scraped.",
        w: 4,
        h: 4,
        targets: [{ expr: `count(${offline}) or vector(0)`, legend: "offline" }],
        defaults: { thresholds: thresholdsBadAbove(1), unit: "none", decimals: 0 },
        options: statOptions(),
      },
      {
        type: "stat",
        title: "Runners busy",
        description: "Runners that are up and running a job.",
        w: 4,
        h: 4,
        targets: [
          {
            expr: `count((${m("github_runner_busy")} == 1) and on (instance) ${up(1)}) or vector(0)`,
            legend: "busy",
          },
        ],
        defaults: { thresholds: THRESHOLDS_NEUTRAL, unit: "none", decimals: 0 },
        options: statOptions(),
      },
      {
        type: "stat",
        title: "Version drift",
        description: "Runners whose installed version differs from the pinned version.",
        w: 4,
        h: 4,
        targets: [
          { expr: `count(${m("github_runner_version_match")} == 0) or vector(0)`, legend: "drifted" },
        ],
        defaults: { thresholds: thresholdsBadAbove(1), unit: "none", decimals: 0 },
        options: statOptions(),
      },
      {
        type: "stat",
        title: "Time since last job",
        description:
          "Per runner: time since its last job finished (runners that never ran a job are not shown).",
        w: 8,
        h: 4,
        targets: [{ expr: `time() - max by (runner) ${lastJobEnd}`, legend: "{{runner}}" }],
        defaults: { thresholds: THRESHOLDS_NEUTRAL, unit: "s", decimals: 0 },
        options: { ...statOptions(), colorMode: "none", graphMode: "none" },
      },
    ],
    [
      {
        type: "table",
        title: "Runner status",
        description: "One row per runner: service up, busy, seconds since the last job, version match.",
        w: 24,
        h: 8,
        targets: [
          { expr: perRunner(m("github_runner_up")), table: true },
          { expr: perRunner(m("github_runner_busy")), table: true },
          { expr: perRunner(`time() - ${lastJobEnd}`), table: true },
          { expr: perRunner(m("github_runner_version_match")), table: true },
        ],
        defaults: {
          thresholds: THRESHOLDS_NEUTRAL,
          custom: { align: "auto", cellOptions: { type: "auto" } },
        },
        overrides: [
          override("Up", {
            mappings: [
              valueMapping({
                "0": { text: "offline", color: "red" },
                "1": { text: "online", color: "green" },
              }),
            ],
            "custom.cellOptions": { type: "color-text" },
          }),
          override("Busy", {
            mappings: [
              valueMapping({ "0": { text: "idle", color: "text" }, "1": { text: "busy", color: "blue" } }),
            ],
            "custom.cellOptions": { type: "color-text" },
          }),
          override("Since last job", { unit: "s", decimals: 0 }),
          override("Version match", {
            mappings: [
              valueMapping({
                "0": { text: "drift", color: "orange" },
                "1": { text: "pinned", color: "green" },
              }),
            ],
            "custom.cellOptions": { type: "color-text" },
          }),
        ],
        options: tableOptions("runner"),
        transformations: [
          { id: "merge", options: {} },
          {
            id: "organize",
            options: {
              excludeByName: { Time: true },
              includeByName: {},
              indexByName: {
                runner: 0,
                role: 1,
                node: 2,
                version: 3,
                "Value #A": 4,
                "Value #B": 5,
                "Value #C": 6,
                "Value #D": 7,
              },
              renameByName: {
                version: "Installed version",
                "Value #A": "Up",
                "Value #B": "Busy",
                "Value #C": "Since last job",
                "Value #D": "Version match",
              },
            },
          },
        ],
      },
    ],
    [
      {
        type: "timeseries",
        title: "Busy vs idle",
        description: "Runners that are up, by whether they are running a job; offline runners apart.",
        w: 12,
        h: 8,
        targets: [
          {
            expr: `count((${m("github_runner_busy")} == 1) and on (instance) ${up(1)}) or vector(0)`,
            legend: "busy",
          },
          {
            expr: `count((${m("github_runner_busy")} == 0) and on (instance) ${up(1)}) or vector(0)`,
            legend: "idle",
          },
          { expr: `count(${offline}) or vector(0)`, legend: "offline" },
        ],
        defaults: { unit: "none", decimals: 0, min: 0, custom: timeseriesCustom(true) },
        options: timeseriesOptions(),
      },
      {
        type: "timeseries",
        title: "Job results (last hour)",
        description: "Finished jobs in the preceding hour, by result.",
        w: 12,
        h: 8,
        targets: [
          {
            expr: `sum by (result) (increase(${m("github_runner_jobs_total")}[1h]))`,
            legend: "{{result}}",
          },
        ],
        defaults: { unit: "none", min: 0, custom: timeseriesCustom() },
        overrides: [
          override("failed", { color: { fixedColor: "red", mode: "fixed" } }),
          override("succeeded", { color: { fixedColor: "green", mode: "fixed" } }),
          override("cancelled", { color: { fixedColor: "orange", mode: "fixed" } }),
        ],
        options: timeseriesOptions(),
      },
    ],
    [
      {
        type: "timeseries",
        title: "Job failure ratio (last hour)",
        description: "Failed jobs / finished jobs in the preceding hour (no value when no job finished).",
        w: 12,
        h: 8,
        targets: [
          {
            expr:
              `sum(increase(${m("github_runner_jobs_total", 'result="failed"')}[1h]))\n` +
              `/\n(sum(increase(${m("github_runner_jobs_total")}[1h])) > 0)`,
            legend: "failure ratio",
          },
        ],
        defaults: { unit: "percentunit", min: 0, max: 1, custom: timeseriesCustom() },
        options: timeseriesOptions(),
      },
      {
        type: "timeseries",
        title: "Work directory free space",
        description: "Bytes available on the filesystem holding each runner's work directory.",
        w: 12,
        h: 8,
        targets: [{ expr: m("github_runner_work_dir_free_bytes"), legend: "{{runner}}" }],
        defaults: { unit: "bytes", min: 0, custom: timeseriesCustom() },
        options: timeseriesOptions(),
      },
    ],
    [
      {
        type: "timeseries",
        title: "CPU busy",
        description: "Share of CPU time not idle, averaged over each runner VM's CPUs.",
        w: 8,
        h: 8,
        targets: [
          {
            expr: `1 - avg by (runner) (rate(${m("node_cpu_seconds_total", 'mode="idle"')}[$__rate_interval]))`,
            legend: "{{runner}}",
          },
        ],
        defaults: { unit: "percentunit", min: 0, max: 1, custom: timeseriesCustom() },
        options: timeseriesOptions(),
      },
      {
        type: "timeseries",
        title: "Memory used",
        description: "1 - MemAvailable / MemTotal per runner VM.",
        w: 8,
        h: 8,
        targets: [
          {
            expr: `1 - ${m("node_memory_MemAvailable_bytes")} / ${m("node_memory_MemTotal_bytes")}`,
            legend: "{{runner}}",
          },
        ],
        defaults: { unit: "percentunit", min: 0, max: 1, custom: timeseriesCustom() },
        options: timeseriesOptions(),
      },
      {
        type: "timeseries",
        title: "Root filesystem free",
        description: "node_filesystem_avail_bytes / node_filesystem_size_bytes of / per runner VM.",
        w: 8,
        h: 8,
        targets: [
          {
            expr:
              `${m("node_filesystem_avail_bytes", 'mountpoint="/"')}\n` +
              `/ ${m("node_filesystem_size_bytes", 'mountpoint="/"')}`,
            legend: "{{runner}}",
          },
        ],
        defaults: { unit: "percentunit", min: 0, max: 1, custom: timeseriesCustom() },
        options: timeseriesOptions(),
      },
    ],
    [
      {
        type: "table",
        title: "Runner versions",
        description: "Runners by installed and pinned version.",
        w: 24,
        h: 6,
        targets: [{ expr: `count by (version, pinned_version) (${m("github_runner_info")})`, table: true }],
        defaults: {
          thresholds: THRESHOLDS_NEUTRAL,
          custom: { align: "auto", cellOptions: { type: "auto" } },
        },
        options: tableOptions("version"),
        transformations: [
          {
            id: "organize",
            options: {
              excludeByName: { Time: true },
              includeByName: {},
              indexByName: { version: 0, pinned_version: 1, Value: 2 },
              renameByName: {
                version: "Installed version",
                pinned_version: "Pinned version",
                Value: "Runners",
              },
            },
          },
        ],
      },
    ],
  ];

  const runnerQuery = `label_values(github_runner_up{stack=${promString(stack)}}, runner)`;
  return {
    uid,
    title: `Runner fleet (${stack})`,
    description: `Self-hosted GitHub Actions runners of stack ${stack}: status, jobs, host resources.`,
    tags: ["runner-fleet", stack],
    timezone: "browser",
    editable: true,
    graphTooltip: 1,
    time: { from: "now-6h", to: "now" },
    refresh: "1m",
    schemaVersion: SCHEMA_VERSION,
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: "",
    links: [],
    annotations: { list: [] },
    templating: {
      list: [
        {
          type: "query",
          name: "runner",
          label: "Runner",
          datasource: { ...ds },
          query: runnerQuery,
          definition: runnerQuery,
          refresh: 2,
          multi: true,
          includeAll: true,
          allValue: ".*",
          current: { selected: true, text: ["All"], value: ["$__all"] },
          options: [],
          regex: "",
          sort: 1,
          hide: 0,
        },
      ],
    },
    panels: layout(rows, ds),
  };
}

// ---------------------------------------------------------------------------------------------
// Serialisation and queries

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Deterministic JSON: keys sorted at every level, 2-space indent, trailing newline. */
export function dashboardJson(d: Dashboard): string {
  return (
    JSON.stringify(
      d,
      (_key, v: unknown) => {
        if (typeof v === "number" && !Number.isFinite(v)) throw new Error(`dashboard: cannot serialise ${v}`);
        if (!isObject(v)) return v;
        const sorted: Record<string, unknown> = {};
        for (const k of Object.keys(v).sort()) sorted[k] = v[k];
        return sorted;
      },
      2,
    ) + "\n"
  );
}

/**
 * Replaces Grafana variables ($name, ${name}, ${name:format}, [[name]]) so the expression can be
 * sent to Prometheus: built-ins get BUILTIN_VARIABLE_VALUES, dashboard variables their allValue
 * (".*", match-all in a =~ matcher). Throws on a variable the dashboard does not define.
 */
export function substituteVariables(expr: string, d: Dashboard): string {
  const values = new Map<string, string>(Object.entries(BUILTIN_VARIABLE_VALUES));
  for (const v of d.templating.list) values.set(v.name, v.allValue);
  const lookup = (name: string): string => {
    const value = values.get(name);
    if (value === undefined) throw new Error(`dashboard ${d.uid}: unknown variable $${name} in ${expr}`);
    return value;
  };
  return expr
    .replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[A-Za-z]+)?\}/g, (_m, name: string) => lookup(name))
    .replace(/\[\[([A-Za-z_][A-Za-z0-9_]*)\]\]/g, (_m, name: string) => lookup(name))
    .replace(/\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, name: string) => lookup(name));
}

/** Every panel query's PromQL, in panel and target order, with variables substituted. */
export function dashboardQueries(d: Dashboard): string[] {
  return d.panels.flatMap((p) => p.targets.map((t) => substituteVariables(t.expr, d)));
}
