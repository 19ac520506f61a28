// Mock-engine tests of the monitoring wiring: exporters per runner, scrape targets, Grafana resources.
import * as github from "@pulumi/github";
import * as proxmoxve from "@muhlba91/pulumi-proxmoxve";
import * as pulumi from "@pulumi/pulumi";
import * as grafana from "@pulumiverse/grafana";
import { strict as assert } from "assert";
import { RunnerFleet } from "../components/runnerFleet";
import { EXPORTER_FILES, scrapeTargets } from "../components/monitoring";
import { Plan } from "../tools/engine";
import { FleetSpec, validateFleetConfig } from "../stacks/validate";
import { find, ofType, planOf, T } from "./support/harness";

const WEBHOOK = "https://hooks.slack.com/services/T000/B000/fleet-test-secret";

function fleetSpec(contactType: "email" | "slack" = "slack"): FleetSpec {
  const result = validateFleetConfig(
    {
      github: { scope: "repository", repository: "deploy" },
      runner: {
        version: "2.321.0",
        sha256: "ba46ba7ce3a4d7236b16fbe44419fb453bc08f866b24f04d549ec89f1722a29e",
      },
      proxmox: {
        nodes: [{ name: "pve1" }, { name: "pve2" }],
        template: { vmId: 9000, node: "pve1" },
        datastore: "local-lvm",
        bridge: "vmbr0",
        vmIdRange: { start: 7000, end: 7099 },
        gateway: "10.0.0.1",
        sshPublicKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAItest fleet"],
      },
      runners: [
        { name: "a-primary", role: "primary", node: "pve1", vmId: 7001, ip: "10.0.0.11/24" },
        { name: "b-secondary", role: "secondary", node: "pve2", vmId: 7002, ip: "10.0.0.12/24" },
      ],
      monitoring: {
        grafana: {
          prometheusDatasourceUid: "prom-uid-1",
          contactPoint:
            contactType === "slack"
              ? { name: "fleet-alerts", type: "slack" }
              : { name: "fleet-alerts", type: "email", addresses: ["oncall@example.com"] },
        },
        prometheus: { host: "10.0.0.5", fileSdPath: "/etc/prometheus/file_sd/fleet.json" },
        exporter: { port: 9200 },
        alerts: { primaryOfflineMinutes: 3 },
      },
    },
    "staging",
  );
  if (!result.ok) throw new Error(result.errors.join("\n"));
  return result.fleet;
}

function monitoredPlan(fleet: FleetSpec): Promise<Plan> {
  return planOf(() => {
    new RunnerFleet("runner-fleet", {
      fleet,
      login: { user: "fleet", privateKey: pulumi.secret("private-key-text") },
      proxmoxProvider: new proxmoxve.Provider("proxmoxve", {}),
      githubProvider: new github.Provider("github", {}),
      githubOwner: "example-org",
      githubToken: pulumi.secret("gh-token"),
      monitoring: {
        grafanaProvider: new grafana.Provider("grafana", { url: "https://grafana.example/" }),
        alertWebhookUrl: pulumi.secret(WEBHOOK),
      },
    });
  });
}

describe("monitoring wiring", () => {
  let plan: Plan;
  before(async () => {
    plan = await monitoredPlan(fleetSpec());
  });

  it("gives every runner an exporter installed after the copies, which wait for VM readiness", () => {
    for (const runner of ["a-primary", "b-secondary"]) {
      const exporter = find(plan, T.remote, `${runner}-exporter`);
      assert.equal(exporter.parent, `runner-fleet:monitoring:RunnerExporter::${runner}`);
      const copies = EXPORTER_FILES.map((f) => `${runner}-copy-${f.split("/").pop()}`);
      assert.deepEqual(
        exporter.dependsOn.filter((d) => d.startsWith(T.copy)),
        copies.map((c) => `${T.copy}::${c}`).sort(),
      );
      for (const c of copies) {
        const copy = find(plan, T.copy, c);
        assert.ok(copy.dependsOn.includes(`${T.remote}::${runner}-ready`), `${c} must wait for readiness`);
        assert.match(String(copy.inputs.source), /^asset:assets\/monitoring\//);
      }
      assert.match(
        String(exporter.inputs.create),
        /sudo env EXPORTER_PORT=9200 SCRAPE_FROM='10\.0\.0\.5' SOURCE_DIR='\/home\/fleet\/runner-fleet-monitoring-src' bash/,
      );
      assert.ok((exporter.inputs.triggers as string[]).includes("port=9200"));
    }
  });

  it("writes one file_sd target per runner on the Prometheus host", () => {
    const cmd = find(plan, T.remote, "monitoring-scrape-targets");
    assert.deepEqual(JSON.parse(String(cmd.inputs.stdin)), [
      {
        targets: ["10.0.0.11:9200"],
        labels: { runner: "a-primary", role: "primary", stack: "staging", node: "pve1" },
      },
      {
        targets: ["10.0.0.12:9200"],
        labels: { runner: "b-secondary", role: "secondary", stack: "staging", node: "pve2" },
      },
    ]);
    assert.match(String(cmd.inputs.create), /'\/etc\/prometheus\/file_sd\/fleet\.json'$/);
    assert.equal(cmd.inputs.delete, "sudo rm -f '/etc/prometheus/file_sd/fleet.json'");
  });

  it("puts the dashboard and rule group in the stack's folder, on the configured datasource", () => {
    const folder = find(plan, "grafana:oss/folder:Folder", "monitoring-folder");
    assert.deepEqual(folder.inputs, { title: "Runner fleet (staging)", uid: "runner-fleet-staging" });
    const dashboard = find(plan, "grafana:oss/dashboard:Dashboard", "monitoring-dashboard");
    assert.equal(dashboard.inputs.folder, "runner-fleet-staging");
    const json = JSON.parse(String(dashboard.inputs.configJson)) as {
      uid: string;
      panels: { datasource?: { uid: string } }[];
    };
    assert.equal(json.uid, "runner-fleet-staging");
    assert.ok(json.panels.length > 0);
    for (const p of json.panels) if (p.datasource) assert.equal(p.datasource.uid, "prom-uid-1");

    const group = find(plan, "grafana:alerting/ruleGroup:RuleGroup", "monitoring-rules-runner-fleet");
    assert.equal(group.inputs.folderUid, "runner-fleet-staging");
    const rules = group.inputs.rules as {
      name: string;
      for: string;
      datas: { refId: string; datasourceUid: string }[];
    }[];
    assert.ok(rules.length >= 7);
    for (const r of rules)
      assert.equal(r.datas.find((d) => d.refId === "A")?.datasourceUid, "prom-uid-1", r.name);
    // The stack's threshold overrides the rule file's 5m.
    assert.equal(rules.find((r) => r.name === "RunnerOfflinePrimary")?.for, "3m");
    assert.equal(rules.find((r) => r.name === "RunnerOfflineSecondary")?.for, "10m");
  });

  it("keeps the webhook URL secret and routes alerts by severity", () => {
    assert.ok(!JSON.stringify(plan).includes("fleet-test-secret"), "webhook URL leaked");
    const cp = find(plan, "grafana:alerting/contactPoint:ContactPoint", "monitoring-contact-point");
    assert.deepEqual(cp.inputs, { name: "fleet-alerts", slacks: [{ url: "[secret]" }] });
    const policy = find(
      plan,
      "grafana:alerting/notificationPolicy:NotificationPolicy",
      "monitoring-notification-policy",
    );
    assert.equal(policy.inputs.contactPoint, "fleet-alerts");
    const matchers = (policy.inputs.policies as { matchers: { value: string }[] }[]).map(
      (p) => p.matchers[0].value,
    );
    assert.deepEqual(matchers, ["critical", "warning"]);
  });

  it("an email contact point carries its addresses", async () => {
    const emailPlan = await monitoredPlan(fleetSpec("email"));
    const cp = find(emailPlan, "grafana:alerting/contactPoint:ContactPoint", "monitoring-contact-point");
    assert.deepEqual(cp.inputs, { emails: [{ addresses: ["oncall@example.com"] }], name: "fleet-alerts" });
  });

  it("without monitoring config there are no exporters and no Grafana resources", async () => {
    const fleet = { ...fleetSpec(), monitoring: undefined };
    const bare = await monitoredPlan(fleet);
    assert.equal(ofType(bare, "runner-fleet:monitoring:RunnerExporter").length, 0);
    assert.equal(bare.resources.filter((r) => r.type.startsWith("grafana:")).length, 0);
  });

  it("scrapeTargets is sorted by runner and carries the four target labels", () => {
    const fleet = fleetSpec();
    const targets = scrapeTargets(
      [...fleet.runners].reverse(),
      { "a-primary": "h1", "b-secondary": "h2" },
      9100,
      "x",
    );
    assert.deepEqual(
      targets.map((t) => [t.targets[0], t.labels.runner]),
      [
        ["h1:9100", "a-primary"],
        ["h2:9100", "b-secondary"],
      ],
    );
  });
});
