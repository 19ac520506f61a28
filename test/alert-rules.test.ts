// components/alertRules.ts: the real rule file parsed, stack thresholds applied, converted to
// Grafana-managed rules, and every Grafana query evaluated in a real Prometheus.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import type { types } from "@pulumiverse/grafana";
import {
  grafanaAnnotations,
  GrafanaRule,
  PromRuleGroup,
  RULE_FILE_THRESHOLDS,
  THRESHOLD_ALERTS,
  applyThresholds,
  grafanaAlertQuery,
  parseRuleFile,
  toGrafanaRules,
} from "../components/alertRules";
import {
  FakeRunner,
  MonitoringStack,
  PromSample,
  RULES_FILE,
  commandExists,
  createFakeRunner,
  loadAlertRules,
  startMonitoringStack,
} from "./support/prometheus";

const RULES_TEXT = fs.readFileSync(RULES_FILE, "utf8");
const DS = "prom-uid";
const ALERTS = [
  "RunnerOfflinePrimary",
  "RunnerOfflineSecondary",
  "RunnerFleetSaturated",
  "RunnerWorkDiskFilling",
  "RunnerVersionDrift",
  "RunnerExporterDown",
  "RunnerJobFailureSpike",
];
const DEFAULTS = {
  primaryOfflineMinutes: 5,
  secondaryOfflineMinutes: 10,
  saturatedMinutes: 15,
  workDiskFreeGb: 10,
  failedJobsPerHour: 3,
};
const CUSTOM = {
  primaryOfflineMinutes: 7,
  secondaryOfflineMinutes: 20,
  saturatedMinutes: 30,
  workDiskFreeGb: 25,
  failedJobsPerHour: 8,
};

function parsed(): PromRuleGroup[] {
  return parseRuleFile(RULES_TEXT);
}

/** [alert, field] for every top-level field (and annotation/label key) that differs. */
function changedFields(a: PromRuleGroup[], b: PromRuleGroup[]): string[] {
  assert.equal(a.length, b.length);
  const out: string[] = [];
  a.forEach((g, gi) => {
    assert.equal(g.name, b[gi].name);
    assert.equal(g.rules.length, b[gi].rules.length);
    g.rules.forEach((r, ri) => {
      const s = b[gi].rules[ri];
      for (const f of ["alert", "expr", "for"] as const) if (r[f] !== s[f]) out.push(`${r.alert}.${f}`);
      for (const f of ["labels", "annotations"] as const) {
        const keys = new Set([...Object.keys(r[f]), ...Object.keys(s[f])]);
        for (const k of keys) if (r[f][k] !== s[f][k]) out.push(`${r.alert}.${f}.${k}`);
      }
    });
  });
  return out.sort();
}

function withRule(groups: PromRuleGroup[], alert: string, edit: (expr: string) => string): PromRuleGroup[] {
  return groups.map((g) => ({
    ...g,
    rules: g.rules.map((r) => (r.alert === alert ? { ...r, expr: edit(r.expr) } : r)),
  }));
}

describe("alertRules: parseRuleFile", function () {
  it("parses the real rule file: one group, the seven alerts, as the test harness reads them", function () {
    const groups = parsed();
    assert.deepEqual(
      groups.map((g) => g.name),
      ["runner-fleet"],
    );
    assert.equal(groups[0].interval, undefined);
    assert.deepEqual(
      groups[0].rules.map((r) => r.alert),
      ALERTS,
    );
    // Independent reader: test/support/prometheus.ts's loadAlertRules (trims expr).
    const reference = loadAlertRules(RULES_FILE)[0].rules;
    assert.deepEqual(
      groups[0].rules.map((r) => ({ ...r, expr: r.expr.trim() })),
      reference,
    );
    const forOf = Object.fromEntries(groups[0].rules.map((r) => [r.alert, r.for]));
    assert.equal(forOf.RunnerOfflinePrimary, "5m");
    assert.equal(forOf.RunnerOfflineSecondary, "10m");
    assert.equal(forOf.RunnerFleetSaturated, "15m");
    assert.equal(forOf.RunnerJobFailureSpike, "0m");
  });

  it("throws a clear error on missing fields and unsupported content", function () {
    const rule = (body: string): string => `groups:\n  - name: g\n    rules:\n      - ${body}\n`;
    const cases: [string, RegExp][] = [
      ["", /must be a mapping with a 'groups' list/],
      ["groups: {}\n", /missing required list 'groups'/],
      ["groups:\n  - rules: []\n", /groups\[0\]: missing required field 'name'/],
      ["groups:\n  - name: g\n", /group 'g': missing required list 'rules'/],
      [rule("alert: A\n        for: 5m"), /rules\[0\] \(A\): missing required field 'expr'/],
      [rule("alert: A\n        expr: up == 0"), /rules\[0\] \(A\): missing required field 'for'/],
      [rule("expr: up == 0\n        for: 5m"), /rules\[0\]: missing required field 'alert'/],
      [rule("alert: A\n        expr: up == 0\n        for: 5"), /'for' must be a non-empty string, got 5/],
      [
        rule("alert: A\n        expr: up == 0\n        for: 5 minutes"),
        /'for' must be a Prometheus duration/,
      ],
      [rule("record: r\n        expr: up"), /recording rules are not supported/],
      [
        rule("alert: A\n        expr: up == 0\n        for: 1m\n        labels:\n          prio: 1"),
        /\(A\)\.labels\.prio: must be a string/,
      ],
      [
        rule("alert: A\n        expr: up == 0\n        for: 1m\n        keep_firing_for: 5m"),
        /\(A\): unsupported key\(s\) keep_firing_for/,
      ],
      ["groups: [\n", /invalid YAML/],
    ];
    for (const [text, re] of cases) assert.throws(() => parseRuleFile(text), re, JSON.stringify(text));
  });

  it("defaults labels and annotations to {} and keeps a group interval", function () {
    const groups = parseRuleFile(
      "groups:\n  - name: g\n    interval: 30s\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 1m\n",
    );
    assert.deepEqual(groups, [
      {
        name: "g",
        interval: "30s",
        rules: [{ alert: "A", expr: "up == 0", for: "1m", labels: {}, annotations: {} }],
      },
    ]);
  });
});

describe("alertRules: applyThresholds", function () {
  it("with the defaults returns groups equal to the input (and does not mutate it)", function () {
    const input = parsed();
    const before = structuredClone(input);
    assert.deepEqual(applyThresholds(input, DEFAULTS), input);
    assert.deepEqual(applyThresholds(input, RULE_FILE_THRESHOLDS), input);
    assert.deepEqual(RULE_FILE_THRESHOLDS, DEFAULTS);
    assert.deepEqual(input, before);
  });

  it("with custom values changes exactly the intended fields", function () {
    const input = parsed();
    const before = structuredClone(input);
    const out = applyThresholds(input, CUSTOM);
    assert.deepEqual(input, before, "input not mutated");
    assert.deepEqual(changedFields(input, out), [
      "RunnerFleetSaturated.annotations.summary",
      "RunnerFleetSaturated.for",
      "RunnerJobFailureSpike.expr",
      "RunnerOfflinePrimary.for",
      "RunnerOfflineSecondary.for",
      "RunnerWorkDiskFilling.expr",
    ]);
    const r = Object.fromEntries(out[0].rules.map((x) => [x.alert, x]));
    assert.equal(r.RunnerOfflinePrimary.for, "7m");
    assert.equal(r.RunnerOfflineSecondary.for, "20m");
    assert.equal(r.RunnerFleetSaturated.for, "30m");
    assert.match(r.RunnerFleetSaturated.annotations.summary, / have been busy for 30 minutes$/);
    assert.equal(
      r.RunnerWorkDiskFilling.expr,
      `github_runner_work_dir_free_bytes{job="runner-fleet"} < ${25 * 1024 ** 3}\n`,
    );
    assert.equal(
      r.RunnerJobFailureSpike.expr,
      `increase(github_runner_jobs_total{job="runner-fleet",result="failed"}[1h]) > 8\n`,
    );
    // The literals are those of the rule file: thresholds apply to the parsed file, not twice.
    assert.throws(() => applyThresholds(out, CUSTOM), /found it 0 times/);
  });

  it("throws when a threshold literal is not found exactly once", function () {
    const input = parsed();
    const cases: [PromRuleGroup[], RegExp][] = [
      [
        withRule(input, "RunnerWorkDiskFilling", (e) => e.replace("10737418240", "10 * 1024 ^ 3")),
        /exactly once, found it 0 times/,
      ],
      [
        withRule(input, "RunnerJobFailureSpike", (e) => e.replace("> 3", "> 30")),
        /RunnerJobFailureSpike expr: expected .* found it 0 times/,
      ],
      [withRule(input, "RunnerJobFailureSpike", (e) => e.replace("> 3", ">= 3")), /found it 0 times/],
      [withRule(input, "RunnerWorkDiskFilling", (e) => `${e.trim()} or ${e.trim()}`), /found it 2 times/],
    ];
    for (const [groups, re] of cases) assert.throws(() => applyThresholds(groups, CUSTOM), re);
    // Also with the defaults: a stale literal must never pass silently.
    assert.throws(() => applyThresholds(cases[0][0], DEFAULTS), /found it 0 times/);
  });

  it("throws when a configurable alert is missing or duplicated, or a value is invalid", function () {
    const input = parsed();
    const without = [
      { ...input[0], rules: input[0].rules.filter((r) => r.alert !== "RunnerOfflineSecondary") },
    ];
    assert.throws(() => applyThresholds(without, DEFAULTS), /RunnerOfflineSecondary exactly once, found 0/);
    assert.throws(
      () => applyThresholds([...input, ...input], DEFAULTS),
      /RunnerOfflinePrimary exactly once, found 2/,
    );
    assert.throws(() => applyThresholds(input, { ...DEFAULTS, workDiskFreeGb: 0 }), /positive integer/);
    assert.throws(
      () => applyThresholds(input, { ...DEFAULTS, primaryOfflineMinutes: 2.5 }),
      /positive integer/,
    );
    assert.deepEqual(
      Object.values(THRESHOLD_ALERTS).sort(),
      ALERTS.filter((a) => !/Drift|ExporterDown/.test(a)).sort(),
    );
  });
});

describe("alertRules: toGrafanaRules", function () {
  it("converts one alert to exactly the expected Grafana rule", function () {
    const rules = toGrafanaRules(parsed()[0], DS);
    const spike = rules.find((r) => r.name === "RunnerJobFailureSpike");
    const expected: GrafanaRule = {
      name: "RunnerJobFailureSpike",
      for: "0m",
      condition: "C",
      noDataState: "OK",
      execErrState: "Error",
      labels: { severity: "warning" },
      annotations: {
        summary:
          '{{ printf "%.0f" $values.D.Value }} jobs failed on runner {{ $labels.runner }} ({{ $labels.stack }}) in the last hour',
        runbook:
          "Open the failed workflow runs for this runner; if they fail in setup or on the host (disk, network, tools) rather than in the code, drain the runner and fix the VM.",
      },
      datas: [
        {
          refId: "A",
          datasourceUid: DS,
          queryType: "",
          relativeTimeRange: { from: 3600, to: 0 },
          model:
            '{"datasource":{"type":"prometheus","uid":"prom-uid"},"editorMode":"code",' +
            '"expr":"group without () (\\nincrease(github_runner_jobs_total{job=\\"runner-fleet\\",result=\\"failed\\"}[1h]) > 3\\n)",' +
            '"instant":true,"range":false,"refId":"A"}',
        },
        {
          refId: "B",
          datasourceUid: "__expr__",
          queryType: "",
          relativeTimeRange: { from: 0, to: 0 },
          model:
            '{"datasource":{"type":"__expr__","uid":"__expr__"},"expression":"A","reducer":"last",' +
            '"refId":"B","settings":{"mode":"dropNN"},"type":"reduce"}',
        },
        {
          refId: "C",
          datasourceUid: "__expr__",
          queryType: "",
          relativeTimeRange: { from: 0, to: 0 },
          model:
            '{"conditions":[{"evaluator":{"params":[0],"type":"gt"}}],' +
            '"datasource":{"type":"__expr__","uid":"__expr__"},"expression":"B","refId":"C","type":"threshold"}',
        },
        {
          refId: "D",
          datasourceUid: DS,
          queryType: "",
          relativeTimeRange: { from: 3600, to: 0 },
          model:
            '{"datasource":{"type":"prometheus","uid":"prom-uid"},"editorMode":"code",' +
            '"expr":"increase(github_runner_jobs_total{job=\\"runner-fleet\\",result=\\"failed\\"}[1h]) > 3",' +
            '"instant":true,"range":false,"refId":"D"}',
        },
      ],
    };
    assert.deepEqual(spike, expected);
  });

  it("every rule keeps the source's name, for, labels and annotations; windows cover range vectors", function () {
    const group = applyThresholds(parsed(), CUSTOM)[0];
    const rules = toGrafanaRules(group, DS);
    assert.equal(rules.length, group.rules.length);
    rules.forEach((g, i) => {
      const src = group.rules[i];
      assert.equal(g.name, src.alert);
      assert.equal(g.for, src.for);
      assert.deepEqual(g.labels, src.labels);
      // Grafana's `$value` is text; annotations read the original expression's number from query D.
      assert.deepEqual(g.annotations, grafanaAnnotations(src.annotations));
      assert.ok(!Object.values(g.annotations).some((v) => /\$value\b(?!s)/.test(v)), g.name);
      assert.equal((JSON.parse(g.datas[3].model) as { expr: string }).expr, src.expr.trim());
      assert.equal(g.condition, "C");
      assert.deepEqual(
        g.datas.map((d) => d.refId),
        ["A", "B", "C", "D"],
      );
      const a = JSON.parse(g.datas[0].model) as {
        expr: string;
        instant: boolean;
        datasource: { uid: string };
      };
      assert.equal(a.expr, grafanaAlertQuery(src.expr));
      assert.equal(a.instant, true);
      assert.equal(a.datasource.uid, DS);
      assert.equal(g.datas[0].datasourceUid, DS);
      assert.equal(g.datas[0].relativeTimeRange.from, src.expr.includes("[1h]") ? 3600 : 600);
    });
    // Copies, not shared references.
    rules[0].labels.extra = "x";
    assert.equal(group.rules[0].labels.extra, undefined);
  });

  it("is assignable to the provider's RuleGroupRule input", function () {
    // Compile-time check (tsc): the field names match @pulumiverse/grafana's input types.
    const asInputs: types.input.alerting.RuleGroupRule[] = toGrafanaRules(parsed()[0], DS);
    assert.equal(asInputs.length, ALERTS.length);
  });

  it("is deterministic and rejects an empty datasource uid", function () {
    assert.deepEqual(toGrafanaRules(parsed()[0], DS), toGrafanaRules(parsed()[0], DS));
    assert.throws(() => toGrafanaRules(parsed()[0], ""), /datasourceUid is empty/);
  });
});

describe("alertRules: Grafana queries against a real Prometheus", function () {
  this.timeout(60_000);

  let runner: FakeRunner | undefined;
  let stack: MonitoringStack | undefined;

  const value = (s: PromSample): number => Number(s.value[1]);
  const labelSets = (samples: PromSample[]): string[] =>
    samples
      .map((s) =>
        JSON.stringify(
          Object.entries(s.metric)
            .filter(([k]) => k !== "__name__")
            .sort(),
        ),
      )
      .sort();
  const queryA = (rule: GrafanaRule): string => (JSON.parse(rule.datas[0].model) as { expr: string }).expr;

  before(async function () {
    for (const tool of ["prometheus", "prometheus-node-exporter", "bash"]) {
      assert.ok(commandExists(tool), `${tool} is not installed (see .ci/run)`);
    }
    // A stopped primary with a drifted version: some alert expressions return series.
    runner = createFakeRunner({ name: "prod-primary", version: "2.320.0", pinnedVersion: "2.321.0" });
    runner.setServiceActive(false);
    const r = runner.run();
    assert.equal(r.code, 0, `runner-metrics.sh exited ${r.code}:\n${r.stderr}`);
    stack = await startMonitoringStack({ textfileDir: runner.textfileDir });
    await stack.waitForQuery(`github_runner_up{runner="prod-primary"} == 0`);
  });

  after(async function () {
    await stack?.stop();
    runner?.cleanup();
  });

  it("every query A parses and evaluates (defaults and custom thresholds)", async function () {
    const exprs = [DEFAULTS, CUSTOM].flatMap((t) =>
      toGrafanaRules(applyThresholds(parsed(), t)[0], DS).map(queryA),
    );
    assert.equal(exprs.length, 2 * ALERTS.length);
    const outcomes = await stack!.queryAll(exprs);
    assert.deepEqual(
      outcomes.filter((o) => o.status !== "success").map((o) => `${o.expr}: ${o.errorType} ${o.error}`),
      [],
    );
  });

  it("query A returns one series per series of the Prometheus expression, same labels, value 1", async function () {
    // A huge disk threshold makes RunnerWorkDiskFilling true as well.
    const group = applyThresholds(parsed(), { ...DEFAULTS, workDiskFreeGb: 1_000_000 })[0];
    const rules = toGrafanaRules(group, DS);
    const nonEmpty: string[] = [];
    for (const [i, rule] of group.rules.entries()) {
      const original = await stack!.query(rule.expr);
      const a = await stack!.query(queryA(rules[i]));
      assert.equal(original.status, "success", rule.alert);
      assert.equal(a.status, "success", rule.alert);
      assert.deepEqual(labelSets(a.result), labelSets(original.result), rule.alert);
      assert.deepEqual(
        a.result.map(value),
        a.result.map(() => 1),
        rule.alert,
      );
      if (a.result.length > 0) nonEmpty.push(rule.alert);
    }
    assert.deepEqual(nonEmpty, ["RunnerOfflinePrimary", "RunnerWorkDiskFilling", "RunnerVersionDrift"]);
    // Why the transformation: the raw expression's value is 0 here, which a "> 0" threshold would miss.
    const raw = await stack!.query(group.rules[0].expr);
    assert.deepEqual(raw.result.map(value), [0]);
  });
});
