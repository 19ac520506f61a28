// End to end: runner-metrics.sh writes the textfile, a real node_exporter serves it, a real
// Prometheus scrapes it through a file_sd target shaped like the program's, loads the real rule
// file, and every alert expression is evaluated through the HTTP API against that data.

import assert from "node:assert/strict";
import {
  AlertRule,
  FakeRunner,
  MonitoringStack,
  PromSample,
  RULES_FILE,
  commandExists,
  createFakeRunner,
  getRuleGroups,
  loadAlertRules,
  parseExposition,
  sampleValue,
  startMonitoringStack,
  waitFor,
} from "./support/prometheus";

const TARGET_LABELS = { runner: "prod-primary", role: "primary", stack: "production", node: "pve1" };
const RUNNER_LABELS = ["deploy", "linux", "self-hosted", "x64"];
const SEL = `job="runner-fleet",runner="prod-primary"`;

const jan1 = (h: number): Date => new Date(Date.UTC(2025, 0, 1, h));
const value = (s: PromSample): number => Number(s.value[1]);

describe("monitoring end to end: runner-metrics.sh -> node_exporter -> Prometheus", function () {
  this.timeout(60_000);

  let runner: FakeRunner | undefined;
  let stack: MonitoringStack | undefined;
  let starting: Promise<MonitoringStack> | undefined;
  let rules: Record<string, AlertRule>;

  function runScript(): void {
    const r = runner!.run();
    assert.equal(r.code, 0, `runner-metrics.sh exited ${r.code}:\n${r.stderr}`);
  }

  async function expr(alert: string): Promise<PromSample[]> {
    const outcome = await stack!.query(rules[alert].expr);
    assert.equal(outcome.status, "success", `${alert}: ${outcome.error}`);
    return outcome.result;
  }

  before(async function () {
    for (const tool of ["prometheus", "prometheus-node-exporter", "bash"]) {
      assert.ok(commandExists(tool), `${tool} is not installed (see .ci/run)`);
    }
    rules = Object.fromEntries(loadAlertRules(RULES_FILE)[0].rules.map((r) => [r.alert, r]));
    runner = createFakeRunner({
      name: "prod-primary",
      version: "2.321.0",
      pinnedVersion: "2.321.0",
      labels: RUNNER_LABELS.join(","),
    });
    runner.addWorkerLog(jan1(0), "Succeeded");
    runner.addWorkerLog(jan1(1), "Failed");
    runner.addWorkerLog(jan1(2), "Failed");
    runScript();
    starting = startMonitoringStack({
      textfileDir: runner.textfileDir,
      targetLabels: TARGET_LABELS,
      ruleFiles: [RULES_FILE],
    });
    stack = await starting;
  });

  after(async function () {
    // Also when `before` timed out while the stack was still starting (its waits are bounded).
    const started = stack ?? (await starting?.catch(() => undefined));
    await started?.stop();
    runner?.cleanup();
  });

  it("scrapes the file_sd target with its target labels", async function () {
    const up = await stack!.waitForQuery(`up{job="runner-fleet"}`);
    assert.equal(up.length, 1);
    assert.deepEqual(up[0].metric, {
      __name__: "up",
      job: "runner-fleet",
      instance: stack!.nodeExporter.target,
      ...TARGET_LABELS,
    });
    assert.equal(value(up[0]), 1);
  });

  it("serves the runner metrics with the target labels added by the scrape", async function () {
    const up = await stack!.waitForQuery(`github_runner_up{runner="prod-primary"}`);
    assert.equal(up.length, 1);
    assert.equal(value(up[0]), 1);
    assert.deepEqual(up[0].metric, {
      __name__: "github_runner_up",
      job: "runner-fleet",
      instance: stack!.nodeExporter.target,
      ...TARGET_LABELS,
    });
    const failed = await stack!.waitForQuery(`github_runner_jobs_total{${SEL},result="failed"}`);
    assert.deepEqual(failed.map(value), [2]);
    const labels = await stack!.waitForQuery(`github_runner_label{${SEL}}`);
    assert.deepEqual(labels.map((s) => s.metric.label).sort(), RUNNER_LABELS);
    const match = await stack!.waitForQuery(`github_runner_version_match{${SEL}}`);
    assert.deepEqual(match.map(value), [1]);
  });

  it("loads the rule file: every alert expression parses and evaluates without error", async function () {
    const exprs = Object.values(rules).map((r) => r.expr);
    assert.equal(exprs.length, 7);
    const outcomes = await stack!.queryAll(exprs);
    assert.deepEqual(
      outcomes.filter((o) => o.status !== "success").map((o) => `${o.expr}: ${o.errorType} ${o.error}`),
      [],
    );
    // Prometheus itself evaluates the group every second: every rule must end up healthy.
    const groups = await waitFor(
      async () => {
        const g = await getRuleGroups(stack!.prometheus.url);
        const all = g.flatMap((x) => x.rules);
        return all.length > 0 && all.every((r) => r.health !== "unknown") ? g : undefined;
      },
      { what: "every rule to be evaluated once", timeoutMs: 15_000 },
    );
    assert.deepEqual(
      groups.map((g) => g.name),
      ["runner-fleet"],
    );
    const loaded = groups[0].rules;
    assert.deepEqual(loaded.map((r) => r.name).sort(), Object.keys(rules).sort());
    assert.deepEqual(
      loaded.filter((r) => r.health !== "ok").map((r) => `${r.name}: ${r.lastError}`),
      [],
    );
  });

  it("a healthy idle runner makes no alert expression true (disk: per the measured free space)", async function () {
    const free = await stack!.waitForQuery(`github_runner_work_dir_free_bytes{${SEL}}`);
    const diskShouldFire = value(free[0]) < 10 * 1024 ** 3;
    const firing: string[] = [];
    for (const alert of Object.keys(rules)) {
      if ((await expr(alert)).length > 0) firing.push(alert);
    }
    assert.deepEqual(firing, diskShouldFire ? ["RunnerWorkDiskFilling"] : []);
  });

  it("four more failed jobs: RunnerJobFailureSpike's expression is true and the alert fires", async function () {
    for (let h = 3; h < 7; h++) runner!.addWorkerLog(jan1(h), "Failed");
    runScript();
    assert.equal(
      sampleValue(parseExposition(runner!.readOutput()), "github_runner_jobs_total", { result: "failed" }),
      6,
    );
    await stack!.waitForQuery(`github_runner_jobs_total{${SEL},result="failed"} == 6`);
    const spike = await expr("RunnerJobFailureSpike");
    assert.equal(spike.length, 1);
    assert.equal(spike[0].metric.runner, "prod-primary");
    assert.equal(spike[0].metric.result, "failed");
    assert.ok(value(spike[0]) > 3, `increase ${value(spike[0])}`);
    const alerts = await stack!.waitForQuery(`ALERTS{alertname="RunnerJobFailureSpike",alertstate="firing"}`);
    assert.equal(alerts[0].metric.severity, "warning");
    assert.equal(alerts[0].metric.runner, "prod-primary");
  });

  it("busy runner: RunnerFleetSaturated's expression returns each of its labels", async function () {
    assert.equal((await expr("RunnerFleetSaturated")).length, 0);
    runner!.setBusy(true);
    runScript();
    await stack!.waitForQuery(`github_runner_busy{${SEL}} == 1`);
    const saturated = await expr("RunnerFleetSaturated");
    assert.deepEqual(
      saturated
        .map((s) => [s.metric, value(s)])
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      RUNNER_LABELS.map((label) => [{ label, stack: "production" }, 1]),
    );
  });

  it("stopped runner: RunnerOfflinePrimary's expression is true and the alert is pending", async function () {
    assert.equal((await expr("RunnerOfflinePrimary")).length, 0);
    runner!.setBusy(false);
    runner!.setServiceActive(false);
    runScript();
    assert.deepEqual(runner!.systemctlCalls().slice(-1), [`is-active ${runner!.unit}`]);
    await stack!.waitForQuery(`github_runner_up{${SEL}} == 0`);
    const offline = await expr("RunnerOfflinePrimary");
    assert.equal(offline.length, 1);
    assert.equal(offline[0].metric.runner, "prod-primary");
    assert.equal(offline[0].metric.role, "primary");
    assert.equal((await expr("RunnerOfflineSecondary")).length, 0, "a primary is not a secondary");
    // The rule needs 5m to fire; within seconds it must be pending.
    const pending = await stack!.waitForQuery(
      `ALERTS{alertname="RunnerOfflinePrimary",alertstate="pending"}`,
    );
    assert.equal(pending.length, 1);
    assert.equal(pending[0].metric.severity, "critical");
    assert.equal(pending[0].metric.runner, "prod-primary");
    assert.equal(pending[0].metric.node, "pve1");
  });

  it("exporter gone: target down, runner series stale, offline and exporter-down expressions true", async function () {
    assert.equal((await expr("RunnerExporterDown")).length, 0);
    await stack!.nodeExporter.stop();
    await stack!.waitForQuery(`up{job="runner-fleet"} == 0`, undefined, { timeoutMs: 15_000 });
    // A failed scrape writes staleness markers: the runner's own series disappear at once.
    const stale = await stack!.query(`github_runner_up{${SEL}}`);
    assert.equal(stale.status, "success");
    assert.deepEqual(stale.result, []);
    const offline = await expr("RunnerOfflinePrimary");
    assert.deepEqual(
      offline.map((s) => s.metric.runner),
      ["prod-primary"],
    );
    const exporterDown = await expr("RunnerExporterDown");
    assert.deepEqual(
      exporterDown.map((s) => s.metric.runner),
      ["prod-primary"],
    );
  });
});
