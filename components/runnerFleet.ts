// The whole fleet of one stack: a RunnerVm per runner (single runners and pool members alike).
import * as pulumi from "@pulumi/pulumi";
import { FleetSpec, RunnerSpec } from "../stacks/validate";
import { RunnerVm, SshLogin } from "./runnerVm";

export interface RunnerFleetArgs {
  fleet: FleetSpec;
  login: SshLogin;
  proxmoxProvider: pulumi.ProviderResource;
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

export class RunnerFleet extends pulumi.ComponentResource {
  public readonly vms: Record<string, RunnerVm> = {};
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

    this.registerOutputs({ runners: this.runners });
  }
}
