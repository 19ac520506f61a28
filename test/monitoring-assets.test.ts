// Asset checks with the real tools: shellcheck on runner-metrics.sh, systemd-analyze on its units,
// promtool on the alert rules (check + unit tests, and proof that the unit tests catch broken
// rules), and runner-metrics.sh executed for real against a fake runner install.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import {
  METRICS_SCRIPT,
  MONITORING_DIR,
  RULES_FILE,
  RULES_TEST_FILE,
  commandExists,
  createFakeRunner,
  FakeRunner,
  loadAlertRules,
  parseExposition,
  removeDir,
  sampleValue,
  tempDir,
} from "./support/prometheus";

function run(cmd: string, args: string[], opts: { input?: string; cwd?: string } = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", input: opts.input, cwd: opts.cwd, timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function requireTool(cmd: string): void {
  assert.ok(commandExists(cmd), `${cmd} is not installed (see .ci/run)`);
}

/** promtool check metrics: 0 = clean, 3 = lint problems, 1 = parse errors. Require clean. */
function checkMetrics(text: string): void {
  const r = run("promtool", ["check", "metrics"], { input: text });
  assert.equal(
    r.code,
    0,
    `promtool check metrics failed (exit ${r.code}):\n${r.out}\n--- input ---\n${text}`,
  );
}

const jan1 = (h: number, m = 0, s = 0): Date => new Date(Date.UTC(2025, 0, 1, h, m, s));
const epoch = (d: Date): number => d.getTime() / 1000;

describe("monitoring assets: runner-metrics.sh and its systemd units", function () {
  it("passes shellcheck", function () {
    requireTool("shellcheck");
    const r = run("shellcheck", ["--shell=bash", "--severity=style", METRICS_SCRIPT]);
    assert.equal(r.code, 0, `shellcheck reported problems:\n${r.out}`);
  });

  it("is executable and starts with a bash shebang", function () {
    const text = fs.readFileSync(METRICS_SCRIPT, "utf8");
    assert.match(text.split("\n")[0], /^#!\/usr\/bin\/env bash$|^#!\/bin\/bash$/);
    assert.ok((fs.statSync(METRICS_SCRIPT).mode & 0o111) !== 0, "runner-metrics.sh is not executable");
  });

  it("units: a oneshot service as root, started at :00 and :30 of every minute", function () {
    const service = fs.readFileSync(path.join(MONITORING_DIR, "runner-metrics.service"), "utf8");
    const timer = fs.readFileSync(path.join(MONITORING_DIR, "runner-metrics.timer"), "utf8");
    const directives = (text: string): string[] => text.split("\n").filter((l) => /^[A-Za-z]+=/.test(l));
    const svc = directives(service);
    assert.ok(svc.includes("Type=oneshot"), service);
    assert.ok(svc.includes("User=root"), service);
    assert.ok(svc.includes("ExecStart=/usr/local/lib/runner-fleet/runner-metrics.sh"), service);
    assert.ok(svc.includes("TimeoutStartSec=60"), "a hung run must not block the timer for ever");
    const tmr = directives(timer);
    assert.ok(tmr.includes("OnCalendar=*-*-* *:*:00,30"), timer);
    assert.ok(tmr.includes("Unit=runner-metrics.service"), timer);
    assert.ok(tmr.includes("WantedBy=timers.target"), timer);
  });

  it("units: systemd-analyze verify and calendar accept them", function () {
    if (!commandExists("systemd-analyze")) this.skip();
    const dir = tempDir("units");
    try {
      // verify insists that ExecStart exists: point it at the script in this checkout.
      const service = fs
        .readFileSync(path.join(MONITORING_DIR, "runner-metrics.service"), "utf8")
        .replaceAll("/usr/local/lib/runner-fleet/runner-metrics.sh", METRICS_SCRIPT);
      fs.writeFileSync(path.join(dir, "runner-metrics.service"), service);
      fs.copyFileSync(
        path.join(MONITORING_DIR, "runner-metrics.timer"),
        path.join(dir, "runner-metrics.timer"),
      );
      const r = run("systemd-analyze", ["verify", "./runner-metrics.service", "./runner-metrics.timer"], {
        cwd: dir,
      });
      // Unknown keys and bad values are only warnings (exit 0): fail on any line about our units.
      const complaints = r.out.split("\n").filter((l) => l.includes("runner-metrics."));
      assert.equal(r.code, 0, r.out);
      assert.deepEqual(complaints, []);
      const cal = run("systemd-analyze", ["calendar", "--iterations=2", "*-*-* *:*:00,30"]);
      assert.equal(cal.code, 0, cal.out);
      const next = [...cal.out.matchAll(/(?:Next elapse|Iter\. #2): \w{3} \S+ (\d\d:\d\d:\d\d)/g)].map(
        (m) => m[1],
      );
      assert.equal(next.length, 2, cal.out);
      const secs = next.map((t) => t.split(":").map(Number)).map(([h, m, s]) => h * 3600 + m * 60 + s);
      assert.equal((secs[1] - secs[0] + 86400) % 86400, 30, `timer period is not 30 s:\n${cal.out}`);
    } finally {
      removeDir(dir);
    }
  });
});

describe("monitoring assets: runner-metrics.sh against a fake runner", function () {
  let runner: FakeRunner | undefined;
  afterEach(function () {
    runner?.cleanup();
    runner = undefined;
  });

  function runOk(r: FakeRunner) {
    const result = r.run();
    assert.equal(result.code, 0, `runner-metrics.sh exited ${result.code}:\n${result.stderr}`);
    return parseExposition(r.readOutput());
  }

  it("reports service, busy, version, labels, job results and free space", function () {
    requireTool("promtool");
    runner = createFakeRunner({
      version: "2.321.0",
      pinnedVersion: "2.322.0",
      labels: "self-hosted, linux ,x64,deploy,deploy",
    });
    runner.addWorkerLog(jan1(0), "Succeeded");
    runner.addWorkerLog(jan1(1), "Failed");
    // The job message (with the workflow's script) is logged too: that text must not count.
    runner.addWorkerLog(jan1(2), "Failed", [
      '"script": "echo Job result after all job steps finish: Failed; echo Job result after all job steps finish: Succeeded"',
      "Job result after all job steps finish: Failed",
    ]);
    runner.addWorkerLog(jan1(3), "Canceled");
    runner.addWorkerLog(jan1(4)); // the running job: no result yet, newest file, newest mtime
    // Listener logs are not job results.
    fs.writeFileSync(
      path.join(runner.diagDir, "Runner_20250101-000000-utc.log"),
      "[2025-01-01 05:00:00Z INFO JobRunner] Job result after all job steps finish: Failed\n",
    );

    runOk(runner);
    const text = runner.readOutput();
    const exp = parseExposition(text);

    assert.equal(sampleValue(exp, "github_runner_up"), 1);
    assert.equal(sampleValue(exp, "github_runner_busy"), 0);
    assert.equal(sampleValue(exp, "github_runner_version_match"), 0);
    assert.equal(
      sampleValue(exp, "github_runner_info", { version: "2.321.0", pinned_version: "2.322.0" }),
      1,
    );
    assert.deepEqual(
      exp.samples
        .filter((s) => s.name === "github_runner_label")
        .map((s) => [s.labels, s.value])
        .sort(),
      [
        [{ label: "deploy" }, 1],
        [{ label: "linux" }, 1],
        [{ label: "self-hosted" }, 1],
        [{ label: "x64" }, 1],
      ].sort(),
    );
    assert.equal(sampleValue(exp, "github_runner_jobs_total", { result: "succeeded" }), 1);
    assert.equal(sampleValue(exp, "github_runner_jobs_total", { result: "failed" }), 2);
    assert.equal(sampleValue(exp, "github_runner_jobs_total", { result: "cancelled" }), 1);
    assert.equal(exp.samples.filter((s) => s.name === "github_runner_jobs_total").length, 3);
    // Parsed from the 03:00 job's result line (03:00:07), not the mtime of the newest log.
    assert.equal(sampleValue(exp, "github_runner_last_job_end_timestamp_seconds"), epoch(jan1(3, 0, 7)));

    const fsStats = fs.statfsSync(runner.workDir);
    const free = sampleValue(exp, "github_runner_work_dir_free_bytes");
    const expected = fsStats.bavail * fsStats.bsize;
    assert.ok(
      Math.abs(free - expected) < 512 * 1024 * 1024,
      `work dir free bytes ${free} is far from statfs ${expected}`,
    );
    assert.ok(free < fsStats.blocks * fsStats.bsize, "free bytes exceed the filesystem size");

    const lastRun = sampleValue(exp, "github_runner_metrics_last_run_timestamp_seconds");
    assert.ok(Math.abs(lastRun - Date.now() / 1000) < 60, `last run ${lastRun} is not now`);

    // No target labels in the file: the scrape adds runner/role/stack/node.
    for (const s of exp.samples) {
      for (const l of ["runner", "role", "stack", "node", "instance", "job"]) {
        assert.ok(!(l in s.labels), `${s.name} carries target label ${l}`);
      }
    }
    const expectedTypes: Record<string, string> = {
      github_runner_up: "gauge",
      github_runner_busy: "gauge",
      github_runner_info: "gauge",
      github_runner_version_match: "gauge",
      github_runner_label: "gauge",
      github_runner_last_job_end_timestamp_seconds: "gauge",
      github_runner_jobs_total: "counter",
      github_runner_work_dir_free_bytes: "gauge",
      github_runner_metrics_last_run_timestamp_seconds: "gauge",
    };
    assert.deepEqual(exp.type, expectedTypes);
    assert.deepEqual(Object.keys(exp.help).sort(), Object.keys(expectedTypes).sort());

    assert.deepEqual(runner.systemctlCalls(), [`is-active ${runner.unit}`]);
    assert.deepEqual(runner.pgrepCalls(), ["-f Runner.Worker"]);

    const st = fs.statSync(runner.outFile);
    assert.equal(st.mode & 0o777, 0o644, "node_exporter (another user) must be able to read the file");
    assert.deepEqual(fs.readdirSync(runner.textfileDir), ["github_runner.prom"], "temp files left behind");
    checkMetrics(text);
  });

  it("is idempotent: a second run writes the same file except run time and live free space", function () {
    runner = createFakeRunner();
    runner.addWorkerLog(jan1(0), "Succeeded");
    runner.addWorkerLog(jan1(1), "Failed");
    // The run timestamp and the free bytes of a live filesystem change between runs by nature.
    const volatile = /^github_runner_(metrics_last_run_timestamp_seconds|work_dir_free_bytes) \d+$/;
    const strip = (t: string): string =>
      t
        .split("\n")
        .filter((l) => !volatile.test(l))
        .join("\n");
    const stateFile = path.join(runner.stateDir, "jobs.state");
    runOk(runner);
    const first = runner.readOutput();
    const firstState = fs.readFileSync(stateFile, "utf8");
    runOk(runner);
    const second = runner.readOutput();
    assert.equal(strip(second), strip(first));
    assert.equal(first.split("\n").filter((l) => volatile.test(l)).length, 2, first);
    assert.equal(second.split("\n").filter((l) => volatile.test(l)).length, 2, second);
    assert.equal(fs.readFileSync(stateFile, "utf8"), firstState, "job state changed without new logs");
    assert.equal(sampleValue(parseExposition(second), "github_runner_jobs_total", { result: "failed" }), 1);
    assert.deepEqual(fs.readdirSync(runner.textfileDir), ["github_runner.prom"]);
  });

  it("reports a busy runner whose service stopped, and version match when no pin is given", function () {
    runner = createFakeRunner({ version: "2.321.0" }); // no RUNNER_PINNED_VERSION
    runner.setBusy(true);
    runner.setServiceActive(false);
    const exp = runOk(runner);
    assert.equal(sampleValue(exp, "github_runner_up"), 0);
    assert.equal(sampleValue(exp, "github_runner_busy"), 1);
    assert.equal(sampleValue(exp, "github_runner_version_match"), 1);
    assert.equal(
      sampleValue(exp, "github_runner_info", { version: "2.321.0", pinned_version: "2.321.0" }),
      1,
    );
    assert.equal(sampleValue(exp, "github_runner_last_job_end_timestamp_seconds"), 0);
    for (const result of ["succeeded", "failed", "cancelled"]) {
      assert.equal(sampleValue(exp, "github_runner_jobs_total", { result }), 0);
    }
  });

  it("escapes label values per the exposition format and parses quoted runner.env values", function () {
    requireTool("promtool");
    runner = createFakeRunner({ labels: "placeholder" });
    const envFile = path.join(runner.etcDir, "runner.env");
    const env = fs
      .readFileSync(envFile, "utf8")
      .replace(/^RUNNER_LABELS=.*$/m, `RUNNER_LABELS='linux,a"b\\c,gpu'`)
      .replace(/^RUNNER_VERSION=.*$/m, 'export RUNNER_VERSION="2.321.0"  ');
    fs.writeFileSync(envFile, env + "RUNNER_PINNED_VERSION=2.321.0 # pinned by stack config\r\n");
    const exp = runOk(runner);
    const text = runner.readOutput();
    assert.match(text, /^github_runner_label\{label="a\\"b\\\\c"\} 1$/m);
    assert.deepEqual(
      exp.samples
        .filter((s) => s.name === "github_runner_label")
        .map((s) => s.labels.label)
        .sort(),
      ['a"b\\c', "gpu", "linux"],
    );
    assert.equal(sampleValue(exp, "github_runner_version_match"), 1);
    checkMetrics(text);
  });

  it("keeps job counters monotonic when the runner deletes old logs, and counts new and finished jobs", function () {
    runner = createFakeRunner();
    const oldFailed = runner.addWorkerLog(jan1(0), "Failed");
    runner.addWorkerLog(jan1(1), "Failed");
    runner.addWorkerLog(jan1(2), "Succeeded");
    let exp = runOk(runner);
    assert.equal(sampleValue(exp, "github_runner_jobs_total", { result: "failed" }), 2);

    fs.rmSync(oldFailed); // retention (30 days by default) removes it
    exp = runOk(runner);
    assert.equal(sampleValue(exp, "github_runner_jobs_total", { result: "failed" }), 2);
    assert.equal(sampleValue(exp, "github_runner_jobs_total", { result: "succeeded" }), 1);

    // A job that was running finishes: its log grows by the result line.
    const running = runner.addWorkerLog(jan1(3));
    exp = runOk(runner);
    assert.equal(sampleValue(exp, "github_runner_jobs_total", { result: "failed" }), 2);
    fs.appendFileSync(
      running,
      "[2025-01-01 03:05:00Z INFO JobRunner] Job result after all job steps finish: Failed\n",
    );
    exp = runOk(runner);
    assert.equal(sampleValue(exp, "github_runner_jobs_total", { result: "failed" }), 3);
    assert.equal(sampleValue(exp, "github_runner_last_job_end_timestamp_seconds"), epoch(jan1(3, 5, 0)));

    // Everything deleted: counters and the last job time stay.
    fs.rmSync(runner.diagDir, { recursive: true });
    exp = runOk(runner);
    assert.equal(sampleValue(exp, "github_runner_jobs_total", { result: "failed" }), 3);
    assert.equal(sampleValue(exp, "github_runner_jobs_total", { result: "succeeded" }), 1);
    assert.equal(sampleValue(exp, "github_runner_last_job_end_timestamp_seconds"), epoch(jan1(3, 5, 0)));
  });

  it("exits 0 with up=0 when the runner is not installed", function () {
    requireTool("promtool");
    runner = createFakeRunner({ installed: false, version: "2.321.0", pinnedVersion: "2.321.0" });
    const exp = runOk(runner);
    assert.equal(sampleValue(exp, "github_runner_up"), 0);
    assert.equal(sampleValue(exp, "github_runner_busy"), 0);
    assert.equal(sampleValue(exp, "github_runner_last_job_end_timestamp_seconds"), 0);
    for (const result of ["succeeded", "failed", "cancelled"]) {
      assert.equal(sampleValue(exp, "github_runner_jobs_total", { result }), 0);
    }
    // The work dir does not exist yet: free space of the nearest existing parent.
    assert.ok(sampleValue(exp, "github_runner_work_dir_free_bytes") > 0);
    assert.deepEqual(runner.systemctlCalls(), [], "no .service file, so systemctl must not be asked");
    checkMetrics(runner.readOutput());
  });

  it("exits 0 without runner.env: empty versions, no version match, no labels", function () {
    requireTool("promtool");
    runner = createFakeRunner({ installed: false, writeEnv: false });
    runner.setServiceActive(false); // in case the host has a real /opt/actions-runner/.service
    const exp = runOk(runner);
    assert.equal(sampleValue(exp, "github_runner_up"), 0);
    assert.equal(sampleValue(exp, "github_runner_version_match"), 0);
    assert.equal(sampleValue(exp, "github_runner_info", { version: "", pinned_version: "" }), 1);
    assert.equal(exp.samples.filter((s) => s.name === "github_runner_label").length, 0);
    checkMetrics(runner.readOutput());
  });
});

describe("monitoring assets: alert rules", function () {
  const required: Record<string, { for: string; severity: string }> = {
    RunnerOfflinePrimary: { for: "5m", severity: "critical" },
    RunnerOfflineSecondary: { for: "10m", severity: "warning" },
    RunnerFleetSaturated: { for: "15m", severity: "warning" },
    RunnerWorkDiskFilling: { for: "10m", severity: "warning" },
    RunnerVersionDrift: { for: "30m", severity: "warning" },
    RunnerExporterDown: { for: "5m", severity: "critical" },
    RunnerJobFailureSpike: { for: "0m", severity: "warning" },
  };

  it("promtool check rules accepts the rule file", function () {
    requireTool("promtool");
    const r = run("promtool", ["check", "rules", RULES_FILE]);
    assert.equal(r.code, 0, `promtool check rules failed:\n${r.out}`);
    assert.match(r.out, new RegExp(`SUCCESS: ${Object.keys(required).length} rules found`));
  });

  it("promtool test rules passes", function () {
    requireTool("promtool");
    const r = run("promtool", ["test", "rules", path.basename(RULES_TEST_FILE)], { cwd: MONITORING_DIR });
    assert.equal(r.code, 0, `promtool test rules failed:\n${r.out}`);
    assert.match(r.out, /SUCCESS/);
  });

  it("one group `runner-fleet`; each alert has its severity, literal for, summary and runbook", function () {
    const groups = loadAlertRules();
    assert.deepEqual(
      groups.map((g) => g.group),
      ["runner-fleet"],
    );
    const rules = groups[0].rules;
    assert.deepEqual(rules.map((r) => r.alert).sort(), Object.keys(required).sort());
    for (const rule of rules) {
      assert.equal(rule.for, required[rule.alert].for, `${rule.alert} for`);
      assert.equal(rule.labels.severity, required[rule.alert].severity, `${rule.alert} severity`);
      assert.deepEqual(Object.keys(rule.annotations).sort(), ["runbook", "summary"], rule.alert);
      assert.ok(rule.annotations.summary.length > 10 && rule.annotations.runbook.length > 20, rule.alert);
      assert.match(rule.expr, /job="runner-fleet"/, `${rule.alert} must select the runner-fleet job`);
    }
    // Deployment rewrites these two lines from stack config: keep them plain `for: <duration>`.
    const text = fs.readFileSync(RULES_FILE, "utf8");
    for (const name of ["RunnerOfflinePrimary", "RunnerOfflineSecondary"]) {
      const block = text.slice(text.indexOf(`- alert: ${name}`));
      assert.match(block, new RegExp(`^ {8}for: ${required[name].for}$`, "m"));
    }
  });

  it("the unit tests have a firing and a non-firing case for every alert", function () {
    const doc = parseYaml(fs.readFileSync(RULES_TEST_FILE, "utf8")) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
    };
    const cases = doc.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of Object.keys(required)) {
      const mine = cases.filter((c) => c.alertname === alert);
      assert.ok(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${alert}: no firing case`,
      );
      assert.ok(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${alert}: no not-firing case`,
      );
    }
  });

  describe("the unit tests catch broken rules", function () {
    // Each mutation of the rule file must make `promtool test rules` fail.
    const mutations: [string, (text: string) => string][] = [
      [
        "primary offline after 4m instead of 5m",
        (t) => t.replace(/(RunnerOfflinePrimary[\s\S]*?for: )5m/, "$1" + "4m"),
      ],
      [
        "secondary offline after 5m",
        (t) => t.replace(/(RunnerOfflineSecondary[\s\S]*?for: )10m/, "$1" + "5m"),
      ],
      [
        "primary offline ignores a down target",
        (t) => t.replace(/\n\s*or\n\s*\(up\{job="runner-fleet",role="primary"\} == 0\)/, ""),
      ],
      [
        "saturation counts stopped runners as capacity",
        (t) => {
          const filter = 'and on (instance) (github_runner_up{job="runner-fleet"} == 1)';
          const at = t.lastIndexOf(filter);
          return at < 0 ? t : t.slice(0, at) + filter.replace("== 1", ">= 0") + t.slice(at + filter.length);
        },
      ],
      ["disk threshold 5 GiB", (t) => t.replace("< 10737418240", "< 5368709120")],
      [
        "exporter down without the missing-metrics branch",
        (t) => t.replace(/\n\s*or\n\s*\(\n\s*up\{job="runner-fleet"\} == 1[\s\S]*?\n\s*\)\n/, "\n"),
      ],
      ["failure spike at >= 3", (t) => t.replace('result="failed"}[1h]) > 3', 'result="failed"}[1h]) >= 3')],
      [
        "version drift severity critical",
        (t) => t.replace(/(RunnerVersionDrift[\s\S]*?severity: )warning/, "$1" + "critical"),
      ],
    ];
    let dir: string;
    before(function () {
      requireTool("promtool");
      dir = tempDir("rules-mutation");
    });
    after(function () {
      removeDir(dir);
    });
    for (const [name, mutate] of mutations) {
      it(name, function () {
        const original = fs.readFileSync(RULES_FILE, "utf8");
        const mutated = mutate(original);
        assert.notEqual(mutated, original, "mutation did not apply");
        fs.writeFileSync(path.join(dir, path.basename(RULES_FILE)), mutated);
        fs.copyFileSync(RULES_TEST_FILE, path.join(dir, path.basename(RULES_TEST_FILE)));
        const check = run("promtool", ["check", "rules", path.basename(RULES_FILE)], { cwd: dir });
        assert.equal(check.code, 0, `mutated rules must stay valid:\n${check.out}`);
        const r = run("promtool", ["test", "rules", path.basename(RULES_TEST_FILE)], { cwd: dir });
        assert.notEqual(r.code, 0, `promtool test rules still passes:\n${r.out}`);
      });
    }
  });
});
