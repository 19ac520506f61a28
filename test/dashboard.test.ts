// components/dashboard.ts: structure and determinism of the dashboard, and every panel query run
// against a real Prometheus scraping a real node_exporter that serves runner-metrics.sh's output.

import assert from "node:assert/strict";
import {
  Dashboard,
  GridPos,
  Panel,
  buildDashboard,
  dashboardJson,
  dashboardQueries,
  substituteVariables,
} from "../components/dashboard";
import {
  FakeRunner,
  MonitoringStack,
  PromSample,
  commandExists,
  createFakeRunner,
  startMonitoringStack,
} from "./support/prometheus";

const OPTS = { stack: "production", datasourceUid: "prom-uid" };
const TARGET_LABELS = { runner: "prod-primary", role: "primary", stack: "production", node: "pve1" };

function panel(d: Dashboard, title: string): Panel {
  const p = d.panels.find((x) => x.title === title);
  assert.ok(p, `panel '${title}' not found in ${d.panels.map((x) => x.title).join(", ")}`);
  return p;
}

function overlaps(a: GridPos, b: GridPos): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

describe("dashboard: structure", function () {
  it("is deterministic: two builds serialise byte-identically, with sorted keys and a trailing newline", function () {
    const a = dashboardJson(buildDashboard(OPTS));
    const b = dashboardJson(buildDashboard({ ...OPTS }));
    assert.equal(a, b);
    assert.ok(a.endsWith("}\n") && !a.endsWith("\n\n"));
    assert.ok(a.startsWith('{\n  "annotations": {'), "2-space indent, keys sorted");
    assert.deepEqual(JSON.parse(a), buildDashboard(OPTS));
    // Key order is independent of construction order.
    const d = buildDashboard(OPTS);
    const reordered = Object.fromEntries(Object.entries(d).reverse()) as unknown as Dashboard;
    assert.equal(dashboardJson(reordered), a);
  });

  it("a one-setting change gives a one-line diff", function () {
    const d = buildDashboard(OPTS);
    const before = dashboardJson(d).split("\n");
    d.refresh = "5m";
    const after = dashboardJson(d).split("\n");
    assert.equal(before.length, after.length);
    assert.deepEqual(
      after.filter((line, i) => line !== before[i]),
      ['  "refresh": "5m",'],
    );
  });

  it("has the stack's uid, title, schema version, and the datasource on every panel and target", function () {
    const d = buildDashboard(OPTS);
    assert.equal(d.uid, "runner-fleet-production");
    assert.equal(d.title, "Runner fleet (production)");
    assert.equal(d.schemaVersion, 39);
    assert.equal(buildDashboard({ ...OPTS, stack: "staging" }).uid, "runner-fleet-staging");
    assert.ok(d.panels.length >= 12, `${d.panels.length} panels`);
    for (const p of d.panels) {
      assert.deepEqual(p.datasource, { type: "prometheus", uid: "prom-uid" }, p.title);
      assert.ok(p.targets.length > 0, p.title);
      for (const t of p.targets)
        assert.deepEqual(t.datasource, { type: "prometheus", uid: "prom-uid" }, p.title);
      assert.deepEqual(
        p.targets.map((t) => t.refId),
        p.targets.map((_t, i) => "ABCDEFGH"[i]),
      );
    }
    assert.deepEqual(
      d.panels.map((p) => p.id),
      d.panels.map((_p, i) => i + 1),
    );
    assert.throws(() => buildDashboard({ ...OPTS, stack: "a.b" }), /not a valid Grafana uid/);
    assert.throws(() => buildDashboard({ ...OPTS, stack: "x".repeat(40) }), /not a valid Grafana uid/);
  });

  it("lays panels out on the 24-column grid without overlap", function () {
    const d = buildDashboard(OPTS);
    for (const p of d.panels) {
      const g = p.gridPos;
      assert.ok(
        g.x >= 0 && g.y >= 0 && g.w > 0 && g.h > 0 && g.x + g.w <= 24,
        `${p.title}: ${JSON.stringify(g)}`,
      );
    }
    for (let i = 0; i < d.panels.length; i++) {
      for (let j = i + 1; j < d.panels.length; j++) {
        const [a, b] = [d.panels[i], d.panels[j]];
        assert.ok(!overlaps(a.gridPos, b.gridPos), `${a.title} overlaps ${b.title}`);
      }
    }
  });

  it("has the runner variable: label_values of the stack's runners, multi, include all", function () {
    const vars = buildDashboard(OPTS).templating.list;
    assert.equal(vars.length, 1);
    const v = vars[0];
    assert.equal(v.name, "runner");
    assert.equal(v.type, "query");
    assert.equal(v.query, 'label_values(github_runner_up{stack="production"}, runner)');
    assert.equal(v.multi, true);
    assert.equal(v.includeAll, true);
    assert.equal(v.allValue, ".*");
    assert.deepEqual(v.datasource, { type: "prometheus", uid: "prom-uid" });
  });

  it("filters every selector by stack and the runner variable", function () {
    const d = buildDashboard(OPTS);
    for (const p of d.panels) {
      for (const t of p.targets) {
        const selectors = [...t.expr.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]);
        assert.ok(selectors.length > 0, `${p.title}: ${t.expr}`);
        for (const s of selectors) {
          assert.ok(
            s.includes('stack="production"') && s.includes('runner=~"$runner"'),
            `${p.title}: ${t.expr}`,
          );
        }
      }
    }
  });

  it("dashboardQueries: every target, variables substituted with match-all values", function () {
    const d = buildDashboard(OPTS);
    const queries = dashboardQueries(d);
    assert.equal(queries.length, d.panels.flatMap((p) => p.targets).length);
    for (const q of queries) assert.ok(!q.includes("$"), q);
    assert.ok(queries.some((q) => q.includes('runner=~".*"')));
    assert.ok(
      queries.some((q) => q.includes("[5m]")),
      "$__rate_interval substituted",
    );
    assert.equal(substituteVariables('x{a=~"${runner:regex}",b=~"[[runner]]"}', d), 'x{a=~".*",b=~".*"}');
    assert.throws(() => substituteVariables('x{a=~"$nope"}', d), /unknown variable \$nope/);
  });
});

describe("dashboard: queries against a real Prometheus", function () {
  this.timeout(60_000);

  let runner: FakeRunner | undefined;
  let stack: MonitoringStack | undefined;
  const d = buildDashboard(OPTS);

  const value = (s: PromSample): number => Number(s.value[1]);
  /** The panel's queries, substituted, run as instant queries; each must succeed. */
  async function panelResults(title: string): Promise<PromSample[][]> {
    const p = panel(d, title);
    const outcomes = await stack!.queryAll(dashboardQueries({ ...d, panels: [p] }));
    for (const o of outcomes) assert.equal(o.status, "success", `${title}: ${o.expr}: ${o.error}`);
    return outcomes.map((o) => o.result);
  }

  before(async function () {
    for (const tool of ["prometheus", "prometheus-node-exporter", "bash"]) {
      assert.ok(commandExists(tool), `${tool} is not installed (see .ci/run)`);
    }
    runner = createFakeRunner({
      name: "prod-primary",
      version: "2.321.0",
      pinnedVersion: "2.321.0",
      labels: "self-hosted,linux,x64,deploy",
    });
    runner.addWorkerLog(new Date(Date.UTC(2025, 0, 1, 0)), "Succeeded");
    runner.addWorkerLog(new Date(Date.UTC(2025, 0, 1, 1)), "Failed");
    const r = runner.run();
    assert.equal(r.code, 0, `runner-metrics.sh exited ${r.code}:\n${r.stderr}`);
    stack = await startMonitoringStack({ textfileDir: runner.textfileDir, targetLabels: TARGET_LABELS });
    // Two scrapes of the runner metrics, so rate() and increase() have data.
    await stack.waitForQuery(`count_over_time(github_runner_up{runner="prod-primary"}[1m]) >= 2`);
  });

  after(async function () {
    await stack?.stop();
    runner?.cleanup();
  });

  it("every dashboardQueries() expression parses and evaluates", async function () {
    const outcomes = await stack!.queryAll(dashboardQueries(d));
    assert.deepEqual(
      outcomes.filter((o) => o.status !== "success").map((o) => `${o.expr}: ${o.errorType} ${o.error}`),
      [],
    );
  });

  it("the runner variable's query finds the runner (as group by)", async function () {
    const m = /^label_values\((.*), (\w+)\)$/.exec(d.templating.list[0].query);
    assert.ok(m);
    const r = await stack!.query(`group by (${m[2]}) (${m[1]})`);
    assert.deepEqual(
      r.result.map((s) => s.metric.runner),
      ["prod-primary"],
    );
  });

  it("key panels return the runner: online, busy/idle, work-dir free space, versions, status", async function () {
    const [online] = await panelResults("Runners online");
    assert.deepEqual(online.map(value), [1]);
    const [offline] = await panelResults("Runners offline");
    assert.deepEqual(offline.map(value), [0]);
    const [busy, idle, down] = await panelResults("Busy vs idle");
    assert.deepEqual(
      [busy, idle, down].map((s) => s.map(value)),
      [[0], [1], [0]],
    );
    const [free] = await panelResults("Work directory free space");
    assert.equal(free.length, 1);
    assert.equal(free[0].metric.runner, "prod-primary");
    assert.ok(value(free[0]) > 0);
    const [versions] = await panelResults("Runner versions");
    assert.deepEqual(versions, [
      { metric: { version: "2.321.0", pinned_version: "2.321.0" }, value: versions[0].value },
    ]);
    assert.deepEqual(versions.map(value), [1]);
    const status = await panelResults("Runner status");
    const row = { runner: "prod-primary", role: "primary", node: "pve1", version: "2.321.0" };
    for (const series of status)
      assert.deepEqual(
        series.map((s) => s.metric),
        [row],
      );
    const [up, isBusy, sinceLastJob, match] = status.map((s) => value(s[0]));
    assert.deepEqual([up, isBusy, match], [1, 0, 1]);
    const lastJob = Date.UTC(2025, 0, 1, 1, 0, 7) / 1000;
    assert.ok(Math.abs(sinceLastJob - (Date.now() / 1000 - lastJob)) < 120, `since last job ${sinceLastJob}`);
  });

  it("job, drift and host panels return data", async function () {
    const [results] = await panelResults("Job results (last hour)");
    assert.deepEqual(results.map((s) => s.metric.result).sort(), ["cancelled", "failed", "succeeded"]);
    const [drift] = await panelResults("Version drift");
    assert.deepEqual(drift.map(value), [0]);
    const [since] = await panelResults("Time since last job");
    assert.deepEqual(
      since.map((s) => s.metric.runner),
      ["prod-primary"],
    );
    for (const title of ["CPU busy", "Memory used"]) {
      const [series] = await panelResults(title);
      assert.deepEqual(
        series.map((s) => s.metric.runner),
        ["prod-primary"],
        title,
      );
      assert.ok(value(series[0]) >= 0 && value(series[0]) <= 1, `${title}: ${value(series[0])}`);
    }
    // Root filesystem: only status success (a container's overlay root is not reported by node_exporter).
    await panelResults("Root filesystem free");
    await panelResults("Job failure ratio (last hour)");
  });
});
