// Fleet observability. Per runner, a RunnerExporter: node_exporter and the runner-metrics timer installed over
// SSH after the VM is ready, the port open only to the Prometheus host. For the fleet, FleetMonitoring: the
// Prometheus file_sd targets (exported, and written on the Prometheus host when one is configured), and in
// Grafana a folder, the dashboard, the alert rule groups from assets/monitoring/runner-fleet.rules.yml, a
// contact point and a notification policy routing by severity.
import * as command from "@pulumi/command";
import { posix } from "path";
import * as pulumi from "@pulumi/pulumi";
import * as grafana from "@pulumiverse/grafana";
import { MonitoringConfig } from "../stacks/schema";
import { RunnerSpec } from "../stacks/validate";
import { applyThresholds, parseRuleFile, toGrafanaRules } from "./alertRules";
import { assetFile, shq } from "./assets";
import { buildDashboard, dashboardJson } from "./dashboard";
import { RunnerVm } from "./runnerVm";

export const EXPORTER_FILES = [
  "assets/monitoring/install-exporter.sh",
  "assets/monitoring/runner-metrics.sh",
  "assets/monitoring/runner-metrics.service",
  "assets/monitoring/runner-metrics.timer",
];
export const RULES_FILE = "assets/monitoring/runner-fleet.rules.yml";

export interface RunnerExporterArgs {
  vm: RunnerVm;
  sshUser: string;
  port: number;
  /** The only address allowed to scrape the port. */
  scrapeFrom: string;
}

export class RunnerExporter extends pulumi.ComponentResource {
  public readonly install: command.remote.Command;

  constructor(name: string, args: RunnerExporterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("runner-fleet:monitoring:RunnerExporter", name, {}, opts);
    const dir = `/home/${args.sshUser}/runner-fleet-monitoring`;
    const hashes = EXPORTER_FILES.map((f) => `${f}=sha256:${assetFile(f).sha256}`);
    const copies = EXPORTER_FILES.map((file) => {
      const base = file.split("/").pop() as string;
      return new command.remote.CopyToRemote(
        `${name}-copy-${base}`,
        {
          connection: args.vm.connection,
          source: new pulumi.asset.FileAsset(file),
          remotePath: `${dir}-${base}`,
          triggers: [`sha256:${assetFile(file).sha256}`, args.vm.vm.id],
        },
        { parent: this, dependsOn: [args.vm.ready] },
      );
    });
    const env = `EXPORTER_PORT=${args.port} SCRAPE_FROM=${shq(args.scrapeFrom)} SOURCE_DIR=${shq(`${dir}-src`)}`;
    // The copies land beside each other as <dir>-<file>; gather them into one source directory first.
    const gather = EXPORTER_FILES.map((f) => f.split("/").pop() as string)
      .map((b) => `ln -sf ${shq(`${dir}-${b}`)} ${shq(`${dir}-src/${b}`)}`)
      .join(" && ");
    this.install = new command.remote.Command(
      `${name}-exporter`,
      {
        connection: args.vm.connection,
        create: `mkdir -p ${shq(`${dir}-src`)} && ${gather} && sudo env ${env} bash ${shq(`${dir}-src/install-exporter.sh`)}`,
        triggers: [...hashes, `port=${args.port}`, `scrapeFrom=${args.scrapeFrom}`, args.vm.vm.id],
        logging: "stdoutAndStderr",
      },
      { parent: this, dependsOn: copies },
    );
    this.registerOutputs({});
  }
}

export interface ScrapeTarget {
  targets: string[];
  labels: { runner: string; role: string; stack: string; node: string };
}

/** Pure: one file_sd target per runner, sorted by runner name. */
export function scrapeTargets(
  runners: RunnerSpec[],
  hosts: Record<string, string>,
  port: number,
  stack: string,
): ScrapeTarget[] {
  return [...runners]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((r) => ({
      targets: [`${hosts[r.name]}:${port}`],
      labels: { runner: r.name, role: r.role, stack, node: r.node },
    }));
}

export interface FleetMonitoringArgs {
  stack: string;
  monitoring: MonitoringConfig;
  runners: RunnerSpec[];
  vms: Record<string, RunnerVm>;
  sshUser: string;
  privateKey: pulumi.Input<string>;
  grafanaProvider: grafana.Provider;
  /** Secret: URL of a webhook or Slack contact point. */
  alertWebhookUrl?: pulumi.Input<string>;
}

export class FleetMonitoring extends pulumi.ComponentResource {
  /** The file_sd JSON for Prometheus (also a stack output). */
  public readonly scrapeTargetsJson: pulumi.Output<string>;
  public readonly folder: grafana.oss.Folder;
  public readonly dashboard: grafana.oss.Dashboard;

  constructor(name: string, args: FleetMonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("runner-fleet:monitoring:FleetMonitoring", name, {}, opts);
    const { monitoring, stack } = args;
    const port = monitoring.exporter.port;

    const hostNames = args.runners.map((r) => r.name);
    this.scrapeTargetsJson = pulumi.all(hostNames.map((n) => args.vms[n].host)).apply((hosts) => {
      const byName = Object.fromEntries(hostNames.map((n, i) => [n, hosts[i]]));
      return `${JSON.stringify(scrapeTargets(args.runners, byName, port, stack), null, 2)}\n`;
    });

    const prometheus = monitoring.prometheus;
    if (prometheus.host) {
      const path = prometheus.fileSdPath ?? `/etc/prometheus/file_sd/runner-fleet-${stack}.json`;
      new command.remote.Command(
        `${name}-scrape-targets`,
        {
          connection: {
            host: prometheus.host,
            user: args.sshUser,
            privateKey: args.privateKey,
            dialErrorLimit: 10,
          },
          // Written atomically: Prometheus re-reads file_sd files when they change.
          create:
            `sudo install -d -m 0755 ${shq(posix.dirname(path))} && sudo tee ${shq(`${path}.tmp`)} >/dev/null && ` +
            `sudo mv ${shq(`${path}.tmp`)} ${shq(path)}`,
          update: `sudo tee ${shq(`${path}.tmp`)} >/dev/null && sudo mv ${shq(`${path}.tmp`)} ${shq(path)}`,
          delete: `sudo rm -f ${shq(path)}`,
          stdin: this.scrapeTargetsJson,
          logging: "stderr",
        },
        { parent: this },
      );
    }

    const child = { parent: this, provider: args.grafanaProvider };
    this.folder = new grafana.oss.Folder(
      `${name}-folder`,
      { title: monitoring.grafana.folder ?? `Runner fleet (${stack})`, uid: `runner-fleet-${stack}` },
      child,
    );
    const datasourceUid = monitoring.grafana.prometheusDatasourceUid;
    this.dashboard = new grafana.oss.Dashboard(
      `${name}-dashboard`,
      {
        folder: this.folder.uid,
        configJson: dashboardJson(buildDashboard({ stack, datasourceUid })),
        overwrite: true,
      },
      child,
    );

    const groups = applyThresholds(parseRuleFile(assetFile(RULES_FILE).text), monitoring.alerts);
    for (const group of groups) {
      new grafana.alerting.RuleGroup(
        `${name}-rules-${group.name}`,
        {
          name: `${group.name}-${stack}`,
          folderUid: this.folder.uid,
          intervalSeconds: 60,
          rules: toGrafanaRules(group, datasourceUid),
        },
        child,
      );
    }

    const cp = monitoring.grafana.contactPoint;
    if (cp) {
      const url = args.alertWebhookUrl ? pulumi.secret(args.alertWebhookUrl) : undefined;
      const contactPoint = new grafana.alerting.ContactPoint(
        `${name}-contact-point`,
        {
          name: cp.name,
          ...(cp.type === "email" ? { emails: [{ addresses: cp.addresses ?? [] }] } : {}),
          ...(cp.type === "webhook" && url ? { webhooks: [{ url }] } : {}),
          ...(cp.type === "slack" && url ? { slacks: [{ url }] } : {}),
        },
        child,
      );
      // Grafana has one notification policy tree per organization: this stack owns it.
      new grafana.alerting.NotificationPolicy(
        `${name}-notification-policy`,
        {
          contactPoint: contactPoint.name,
          groupBies: ["alertname", "stack"],
          policies: [
            {
              matchers: [{ label: "severity", match: "=", value: "critical" }],
              contactPoint: contactPoint.name,
              groupWait: "30s",
              repeatInterval: "1h",
            },
            {
              matchers: [{ label: "severity", match: "=", value: "warning" }],
              contactPoint: contactPoint.name,
              repeatInterval: "4h",
            },
          ],
        },
        child,
      );
    }

    this.registerOutputs({ scrapeTargets: this.scrapeTargetsJson });
  }
}
