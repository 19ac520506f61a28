// The whole fleet of one stack: per runner (single runners and pool members alike) a RunnerVm and its
// GithubRunner registration; the GitHub environments and runner group they serve.
import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";
import { scrapeSource } from "../stacks/schema";
import { FleetSpec, naturalCompare, RunnerSpec } from "../stacks/validate";
import { GithubRunner, GithubTarget, runnerLabels } from "./githubRunner";
import { GithubSetup } from "./githubSetup";
import { FleetMonitoring, RunnerExporter } from "./monitoring";
import * as grafana from "@pulumiverse/grafana";
import { RunnerVm, SshLogin } from "./runnerVm";

export interface RunnerFleetArgs {
  fleet: FleetSpec;
  login: SshLogin;
  proxmoxProvider: pulumi.ProviderResource;
  githubProvider: github.Provider;
  /** The GitHub owner and the credential (a secret) registration and deregistration use. */
  githubOwner: string;
  githubToken: pulumi.Input<string>;
  /** Protect VMs, deregistration and environments against accidental deletion (production). */
  protect?: boolean;
  /** Exporters, scrape targets and Grafana; present when `runner-fleet:monitoring` is configured. */
  monitoring?: {
    grafanaProvider: grafana.Provider;
    /** Secret: the webhook or Slack URL of the contact point. */
    alertWebhookUrl?: pulumi.Input<string>;
  };
}

export interface RunnerSummary {
  vmId: number;
  node: string;
  role: string;
  pool?: string;
  host: pulumi.Output<string>;
}

/**
 * Clone bounding. Proxmox locks the template's config for every clone; more than a couple of clones of one
 * template at once fail with `can't lock file '/var/lock/qemu-server/lock-<id>.conf' - got timeout`
 * (bpg/terraform-provider-proxmox #995, #1521). So the clones of one template form `concurrency` chains:
 * in VM ID order, each VM waits for the one `concurrency` places before it. Ordering by VM ID keeps the
 * chains stable when runners are added (dependencies are not inputs, so a changed chain changes nothing).
 * Returns, per runner name, the name of the runner whose clone it waits for.
 */
export function cloneOrder(runners: RunnerSpec[], concurrency: number): Map<string, string> {
  const byId = [...runners].sort((a, b) => a.vmId - b.vmId);
  const after = new Map<string, string>();
  byId.forEach((r, i) => {
    if (i >= concurrency) after.set(r.name, byId[i - concurrency].name);
  });
  return after;
}

/**
 * Rollout batches. Re-registering a runner (version bump, label change, new install script) takes it offline
 * for a moment; the installs run in batches of `batchSize`, each batch after the previous one finished,
 * primaries first, so a change never takes every runner of a label offline at once (with batchSize 1, at
 * most one runner re-registers at a time). Returns the batches as lists of runner names.
 */
export function rolloutBatches(runners: RunnerSpec[], batchSize: number): string[][] {
  const ordered = [...runners].sort((a, b) =>
    a.role === b.role ? naturalCompare(a.name, b.name) : a.role === "primary" ? -1 : 1,
  );
  const batches: string[][] = [];
  for (let i = 0; i < ordered.length; i += batchSize)
    batches.push(ordered.slice(i, i + batchSize).map((r) => r.name));
  return batches;
}

export class RunnerFleet extends pulumi.ComponentResource {
  public readonly vms: Record<string, RunnerVm> = {};
  public readonly registrations: Record<string, GithubRunner> = {};
  public readonly github: GithubSetup;
  public readonly exporters: Record<string, RunnerExporter> = {};
  public readonly monitoring?: FleetMonitoring;
  public readonly runners: Record<string, RunnerSummary> = {};

  constructor(name: string, args: RunnerFleetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("runner-fleet:fleet:RunnerFleet", name, {}, opts);
    const { fleet } = args;

    const waitsFor = cloneOrder(fleet.runners, fleet.proxmox.cloneConcurrency);
    // Create in VM ID order so each clone's predecessor exists when it is declared.
    for (const runner of [...fleet.runners].sort((a, b) => a.vmId - b.vmId)) {
      const predecessor = waitsFor.get(runner.name);
      const vm = new RunnerVm(
        runner.name,
        {
          runner,
          stack: fleet.stack,
          proxmox: fleet.proxmox,
          login: args.login,
          provider: args.proxmoxProvider,
          cloneAfter: predecessor ? [this.vms[predecessor].vm] : undefined,
          protect: args.protect,
        },
        { parent: this },
      );
      this.vms[runner.name] = vm;
      this.runners[runner.name] = {
        vmId: runner.vmId,
        node: runner.node,
        role: runner.role,
        ...(runner.pool ? { pool: runner.pool.name } : {}),
        host: vm.host,
      };
    }

    const labelsByRole: Record<string, string[]> = {};
    // Per role, the labels every runner of that role carries: what a workflow puts in `runs-on`.
    for (const r of fleet.runners) {
      const labels = runnerLabels(r, fleet.stack, fleet.runner);
      const common = labelsByRole[r.role];
      labelsByRole[r.role] = common ? common.filter((l) => labels.includes(l)) : labels;
    }
    this.github = new GithubSetup(
      "github",
      {
        github: fleet.github,
        environments: fleet.environments,
        labelsByRole,
        provider: args.githubProvider,
        protect: args.protect,
      },
      { parent: this },
    );

    const target: GithubTarget = { github: fleet.github, owner: args.githubOwner, token: args.githubToken };
    const byName = new Map(fleet.runners.map((r) => [r.name, r]));
    let previous: pulumi.Resource[] = this.github.runnerGroup ? [this.github.runnerGroup] : [];
    for (const batch of rolloutBatches(fleet.runners, fleet.runner.rolloutBatchSize)) {
      const current = batch.map((runnerName) => {
        const registration = new GithubRunner(
          runnerName,
          {
            runner: byName.get(runnerName) as RunnerSpec,
            stack: fleet.stack,
            software: fleet.runner,
            target,
            vm: this.vms[runnerName],
            sshUser: fleet.proxmox.sshUser,
            installAfter: previous,
            protect: args.protect,
          },
          { parent: this },
        );
        this.registrations[runnerName] = registration;
        return registration.install;
      });
      previous = current;
    }

    if (fleet.monitoring && args.monitoring) {
      const scrapeFrom = scrapeSource(fleet.monitoring) as string;
      for (const runner of fleet.runners) {
        this.exporters[runner.name] = new RunnerExporter(
          runner.name,
          {
            vm: this.vms[runner.name],
            sshUser: fleet.proxmox.sshUser,
            port: fleet.monitoring.exporter.port,
            scrapeFrom,
          },
          { parent: this },
        );
      }
      this.monitoring = new FleetMonitoring(
        "monitoring",
        {
          stack: fleet.stack,
          monitoring: fleet.monitoring,
          runners: fleet.runners,
          vms: this.vms,
          sshUser: fleet.proxmox.sshUser,
          privateKey: args.login.privateKey,
          grafanaProvider: args.monitoring.grafanaProvider,
          alertWebhookUrl: args.monitoring.alertWebhookUrl,
        },
        { parent: this },
      );
    }

    this.registerOutputs({ runners: this.runners });
  }
}
