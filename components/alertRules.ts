// Alert rules: assets/monitoring/runner-fleet.rules.yml is the single source. This module parses it,
// applies the per-stack thresholds from `monitoring.alerts`, and converts each Prometheus alerting
// rule into a Grafana-managed rule (the shape of @pulumiverse/grafana's RuleGroupRule input).
//
// Pure functions only: no Pulumi types, no I/O.

import { parse as parseYaml } from "yaml";

export interface PromRule {
  alert: string;
  expr: string;
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface PromRuleGroup {
  name: string;
  interval?: string;
  rules: PromRule[];
}

export interface AlertThresholds {
  primaryOfflineMinutes: number;
  secondaryOfflineMinutes: number;
  saturatedMinutes: number;
  workDiskFreeGb: number;
  failedJobsPerHour: number;
}

/** One stage of a Grafana rule: field names as in the provider's `RuleGroupRuleData` input. */
export interface GrafanaRuleData {
  refId: string;
  datasourceUid: string;
  queryType: string;
  relativeTimeRange: { from: number; to: number };
  /** JSON, keys sorted. */
  model: string;
}

/**
 * A Grafana-managed alert rule: field names as in the provider's `RuleGroupRule` input, so a value
 * can be passed as one element of `grafana.alerting.RuleGroup`'s `rules` unchanged. The stages are
 * `datas` because that is the provider's field name (a `data` field would not be accepted).
 */
export interface GrafanaRule {
  name: string;
  for: string;
  condition: string;
  noDataState: string;
  execErrState: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  datas: GrafanaRuleData[];
}

// ---------------------------------------------------------------------------------------------
// Parsing

const DURATION = /^(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?$/;

const DURATION_UNITS_S: Record<string, number> = {
  y: 365 * 24 * 3600,
  w: 7 * 24 * 3600,
  d: 24 * 3600,
  h: 3600,
  m: 60,
  s: 1,
  ms: 0.001,
};

function isDuration(s: string): boolean {
  return s !== "" && DURATION.test(s);
}

/** Seconds in a Prometheus duration such as "1h30m". */
export function durationSeconds(s: string): number {
  if (!isDuration(s)) throw new Error(`not a Prometheus duration: '${s}'`);
  let total = 0;
  for (const m of s.matchAll(/(\d+)(ms|y|w|d|h|m|s)/g)) total += Number(m[1]) * DURATION_UNITS_S[m[2]];
  return total;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], where: string): void {
  const unknown = Object.keys(obj).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new Error(`${where}: unsupported key(s) ${unknown.join(", ")} (supported: ${allowed.join(", ")})`);
  }
}

function stringMap(v: unknown, where: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isRecord(v)) throw new Error(`${where}: must be a mapping of strings`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== "string")
      throw new Error(`${where}.${k}: must be a string, got ${JSON.stringify(val)}`);
    out[k] = val;
  }
  return out;
}

function requiredString(obj: Record<string, unknown>, key: string, where: string): string {
  const v = obj[key];
  if (v === undefined || v === null) throw new Error(`${where}: missing required field '${key}'`);
  if (typeof v !== "string" || v.trim() === "") {
    throw new Error(`${where}: '${key}' must be a non-empty string, got ${JSON.stringify(v)}`);
  }
  return v;
}

function parseRule(raw: unknown, where: string): PromRule {
  if (!isRecord(raw)) throw new Error(`${where}: must be a mapping`);
  if ("record" in raw) {
    throw new Error(`${where}: recording rules are not supported (only alerting rules are deployed)`);
  }
  const alert = requiredString(raw, "alert", where);
  const at = `${where} (${alert})`;
  checkKeys(raw, ["alert", "expr", "for", "labels", "annotations"], at);
  const expr = requiredString(raw, "expr", at);
  const forValue = requiredString(raw, "for", at);
  if (!isDuration(forValue)) throw new Error(`${at}: 'for' must be a Prometheus duration, got '${forValue}'`);
  return {
    alert,
    expr,
    for: forValue,
    labels: stringMap(raw.labels, `${at}.labels`),
    annotations: stringMap(raw.annotations, `${at}.annotations`),
  };
}

/**
 * Parses a Prometheus rule file (alerting rules only). Every rule needs `alert`, `expr` and `for`;
 * `labels` and `annotations` default to {}. Throws on anything else, naming the offending rule.
 */
export function parseRuleFile(text: string): PromRuleGroup[] {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new Error(`rule file: invalid YAML: ${(err as Error).message}`);
  }
  if (!isRecord(doc)) throw new Error("rule file: must be a mapping with a 'groups' list");
  checkKeys(doc, ["groups"], "rule file");
  if (!Array.isArray(doc.groups)) throw new Error("rule file: missing required list 'groups'");
  const names = new Set<string>();
  return doc.groups.map((rawGroup: unknown, gi: number): PromRuleGroup => {
    const gwhere = `rule file: groups[${gi}]`;
    if (!isRecord(rawGroup)) throw new Error(`${gwhere}: must be a mapping`);
    const name = requiredString(rawGroup, "name", gwhere);
    const where = `rule file: group '${name}'`;
    checkKeys(rawGroup, ["name", "interval", "rules"], where);
    if (names.has(name)) throw new Error(`${where}: duplicate group name`);
    names.add(name);
    if (!Array.isArray(rawGroup.rules)) throw new Error(`${where}: missing required list 'rules'`);
    const group: PromRuleGroup = {
      name,
      rules: rawGroup.rules.map((r: unknown, ri: number) => parseRule(r, `${where}: rules[${ri}]`)),
    };
    if (rawGroup.interval !== undefined) {
      const interval = requiredString(rawGroup, "interval", where);
      if (!isDuration(interval)) throw new Error(`${where}: 'interval' must be a Prometheus duration`);
      group.interval = interval;
    }
    return group;
  });
}

// ---------------------------------------------------------------------------------------------
// Thresholds from stack config

/** Alerts whose `for` or expression take a value from `monitoring.alerts`. */
export const THRESHOLD_ALERTS = {
  primaryOffline: "RunnerOfflinePrimary",
  secondaryOffline: "RunnerOfflineSecondary",
  saturated: "RunnerFleetSaturated",
  workDisk: "RunnerWorkDiskFilling",
  failedJobs: "RunnerJobFailureSpike",
} as const;

/**
 * The exact text of the rule file that carries each configurable threshold. A replacement must find
 * its literal exactly once (not followed by another digit), otherwise applyThresholds throws: an edit
 * of the rule file must fail loudly in tests instead of silently ignoring stack config.
 */
export const THRESHOLD_LITERALS = {
  /** RunnerWorkDiskFilling expr: 10 GiB in bytes. */
  workDisk: (gib: number): string =>
    `github_runner_work_dir_free_bytes{job="runner-fleet"} < ${gib * 1024 ** 3}`,
  /** RunnerJobFailureSpike expr. */
  failedJobs: (n: number): string => `[1h]) > ${n}`,
  /** RunnerFleetSaturated summary: states the `for` duration in words. */
  saturatedSummary: (minutes: number): string => `have been busy for ${minutes} minutes`,
} as const;

/** The values the rule file is written with (the schema's defaults). */
export const RULE_FILE_THRESHOLDS: AlertThresholds = {
  primaryOfflineMinutes: 5,
  secondaryOfflineMinutes: 10,
  saturatedMinutes: 15,
  workDiskFreeGb: 10,
  failedJobsPerHour: 3,
};

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Replaces `literal` in `text`, which must occur exactly once (and not as a prefix of a longer number). */
export function replaceLiteralOnce(
  text: string,
  literal: string,
  replacement: string,
  where: string,
): string {
  const re = new RegExp(escapeRegExp(literal) + "(?![0-9.])", "g");
  const count = [...text.matchAll(re)].length;
  if (count !== 1) {
    throw new Error(
      `${where}: expected the literal ${JSON.stringify(literal)} exactly once, found it ${count} times; ` +
        "the rule file changed: update THRESHOLD_LITERALS in components/alertRules.ts",
    );
  }
  return text.replace(re, () => replacement);
}

function checkThresholds(t: AlertThresholds): void {
  for (const [key, value] of Object.entries(t)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new Error(`alert threshold ${key} must be a positive integer, got ${value}`);
    }
  }
  if (!Number.isSafeInteger(t.workDiskFreeGb * 1024 ** 3)) {
    throw new Error(`alert threshold workDiskFreeGb is too large: ${t.workDiskFreeGb}`);
  }
}

/**
 * New groups with the stack's thresholds applied: the `for` of the two offline alerts and of the
 * saturation alert (and the duration its summary states), the work-disk threshold (GiB, as bytes)
 * and the failed-jobs-per-hour threshold in the expressions. Each of the five alerts must exist
 * exactly once. With RULE_FILE_THRESHOLDS the result deep-equals the input.
 */
export function applyThresholds(groups: PromRuleGroup[], t: AlertThresholds): PromRuleGroup[] {
  checkThresholds(t);
  const seen = new Map<string, number>();
  const out = groups.map((g): PromRuleGroup => ({
    ...g,
    rules: g.rules.map((rule): PromRule => {
      const r: PromRule = { ...rule, labels: { ...rule.labels }, annotations: { ...rule.annotations } };
      const where = `alert ${r.alert}`;
      switch (r.alert) {
        case THRESHOLD_ALERTS.primaryOffline:
          r.for = `${t.primaryOfflineMinutes}m`;
          break;
        case THRESHOLD_ALERTS.secondaryOffline:
          r.for = `${t.secondaryOfflineMinutes}m`;
          break;
        case THRESHOLD_ALERTS.saturated:
          r.for = `${t.saturatedMinutes}m`;
          r.annotations.summary = replaceLiteralOnce(
            r.annotations.summary ?? "",
            THRESHOLD_LITERALS.saturatedSummary(RULE_FILE_THRESHOLDS.saturatedMinutes),
            THRESHOLD_LITERALS.saturatedSummary(t.saturatedMinutes),
            `${where} annotations.summary`,
          );
          break;
        case THRESHOLD_ALERTS.workDisk:
          r.expr = replaceLiteralOnce(
            r.expr,
            THRESHOLD_LITERALS.workDisk(RULE_FILE_THRESHOLDS.workDiskFreeGb),
            THRESHOLD_LITERALS.workDisk(t.workDiskFreeGb),
            `${where} expr`,
          );
          break;
        case THRESHOLD_ALERTS.failedJobs:
          r.expr = replaceLiteralOnce(
            r.expr,
            THRESHOLD_LITERALS.failedJobs(RULE_FILE_THRESHOLDS.failedJobsPerHour),
            THRESHOLD_LITERALS.failedJobs(t.failedJobsPerHour),
            `${where} expr`,
          );
          break;
        default:
          return r;
      }
      seen.set(r.alert, (seen.get(r.alert) ?? 0) + 1);
      return r;
    }),
  }));
  for (const alert of Object.values(THRESHOLD_ALERTS)) {
    const n = seen.get(alert) ?? 0;
    if (n !== 1) throw new Error(`applyThresholds: expected alert ${alert} exactly once, found ${n}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Grafana-managed rules

/** Deterministic JSON: object keys sorted at every level. */
export function stableJson(value: unknown, indent?: number): string {
  return JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (typeof v === "number" && !Number.isFinite(v)) throw new Error(`cannot serialise ${v} as JSON`);
      if (!isRecord(v)) return v;
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) sorted[k] = v[k];
      return sorted;
    },
    indent,
  );
}

/**
 * The Grafana query for an alert: one series per series the Prometheus expression returns, same
 * labels (without __name__), value always 1.
 *
 * Prometheus fires one alert per returned series whatever its value; Grafana fires per series whose
 * condition is non-zero. A filtering comparison such as `github_runner_up == 0` returns the value 0,
 * so feeding the raw expression to a `> 0` threshold would never fire, and `(expr) * 0 + 1` turns NaN
 * and ±Inf into NaN (dropped by the reducer: no alert). `group without ()` keeps every label set and
 * yields 1 for any sample value.
 */
export function grafanaAlertQuery(expr: string): string {
  return `group without () (\n${expr.trim()}\n)`;
}

/** Seconds of the longest range vector / subquery range plus the largest offset in `expr`. */
export function longestLookbackSeconds(expr: string): number {
  let range = 0;
  for (const m of expr.matchAll(/\[\s*([0-9a-z]+)\s*(?::\s*[0-9a-z]*\s*)?\]/g)) {
    range = Math.max(range, durationSeconds(m[1]));
  }
  let offset = 0;
  for (const m of expr.matchAll(/\boffset\s+-?([0-9a-z]+)/g))
    offset = Math.max(offset, durationSeconds(m[1]));
  return range + offset;
}

/** Default query window for an alert's query (Grafana's own default). */
export const MIN_RELATIVE_FROM_S = 600;

const EXPR_DATASOURCE = { type: "__expr__", uid: "__expr__" };

/**
 * One Grafana rule per alert: A = grafanaAlertQuery(expr) as an instant query, B = reduce(last,
 * dropNN) of A, C = threshold B > 0; condition C. No data (no series) is OK, as in Prometheus.
 * `for`, labels and annotations are copied unchanged.
 */
export function toGrafanaRules(group: PromRuleGroup, datasourceUid: string): GrafanaRule[] {
  if (datasourceUid.trim() === "") throw new Error("toGrafanaRules: datasourceUid is empty");
  const names = new Set<string>();
  return group.rules.map((rule): GrafanaRule => {
    if (names.has(rule.alert)) throw new Error(`group ${group.name}: duplicate alert name ${rule.alert}`);
    names.add(rule.alert);
    const from = Math.max(MIN_RELATIVE_FROM_S, Math.ceil(longestLookbackSeconds(rule.expr)));
    return {
      name: rule.alert,
      for: rule.for,
      condition: "C",
      noDataState: "OK",
      execErrState: "Error",
      labels: { ...rule.labels },
      annotations: grafanaAnnotations(rule.annotations),
      datas: [
        {
          refId: "A",
          datasourceUid,
          queryType: "",
          relativeTimeRange: { from, to: 0 },
          model: stableJson({
            datasource: { type: "prometheus", uid: datasourceUid },
            editorMode: "code",
            expr: grafanaAlertQuery(rule.expr),
            instant: true,
            range: false,
            refId: "A",
          }),
        },
        {
          refId: "B",
          datasourceUid: EXPR_DATASOURCE.uid,
          queryType: "",
          relativeTimeRange: { from: 0, to: 0 },
          model: stableJson({
            datasource: EXPR_DATASOURCE,
            expression: "A",
            reducer: "last",
            refId: "B",
            settings: { mode: "dropNN" },
            type: "reduce",
          }),
        },
        {
          refId: "C",
          datasourceUid: EXPR_DATASOURCE.uid,
          queryType: "",
          relativeTimeRange: { from: 0, to: 0 },
          model: stableJson({
            conditions: [{ evaluator: { params: [0], type: "gt" } }],
            datasource: EXPR_DATASOURCE,
            expression: "B",
            refId: "C",
            type: "threshold",
          }),
        },
        {
          // The original expression, not part of the condition: its value is what annotations print.
          refId: "D",
          datasourceUid,
          queryType: "",
          relativeTimeRange: { from, to: 0 },
          model: stableJson({
            datasource: { type: "prometheus", uid: datasourceUid },
            editorMode: "code",
            expr: rule.expr.trim(),
            instant: true,
            range: false,
            refId: "D",
          }),
        },
      ],
    };
  });
}

/**
 * In Grafana templates `$value` is a text summary of every query, not the alert's number; the number of
 * the original expression is `$values.D.Value` (query D above). Labels and the rest pass unchanged.
 */
export function grafanaAnnotations(annotations: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(annotations).map(([k, v]) => [k, v.replace(/\$value\b(?!s)/g, "$$values.D.Value")]),
  );
}
