// One runner's virtual machine: a full clone of the template, and a readiness command that returns only
// once cloud-init has finished on it. Later steps (runner install, exporters) depend on `ready`.
import * as proxmoxve from "@muhlba91/pulumi-proxmoxve";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { ProxmoxConfig } from "../stacks/schema";
import { RunnerSpec } from "../stacks/validate";

export interface SshLogin {
  user: string;
  /** Secret. */
  privateKey: pulumi.Input<string>;
}

export interface RunnerVmArgs {
  runner: RunnerSpec;
  stack: string;
  proxmox: ProxmoxConfig;
  login: SshLogin;
  provider: pulumi.ProviderResource;
  /** Clones this VM waits for: bounds concurrent clones of one template (see RunnerFleet). */
  cloneAfter?: pulumi.Resource[];
  /** Protect the VM against accidental deletion (production). */
  protect?: boolean;
}

/** Readiness: cloud-init's own wait. Exit 2 means it finished with recoverable errors ("degraded"). */
export const READY_SCRIPT =
  "sudo cloud-init status --wait >/dev/null; rc=$?; " +
  'if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then sudo cloud-init status --long >&2; exit "$rc"; fi';

/** Pure: the VmLegacy inputs of a runner (everything but the provider wiring). */
export function vmInputs(runner: RunnerSpec, stack: string, proxmox: ProxmoxConfig): proxmoxve.VmLegacyArgs {
  const dns = Array.isArray(proxmox.dns) ? { servers: proxmox.dns } : proxmox.dns;
  return {
    name: runner.name,
    nodeName: runner.node,
    vmId: runner.vmId,
    description: `GitHub Actions runner ${runner.name} (${runner.role}), managed by runner-fleet stack ${stack}`,
    tags: ["runner-fleet", stack, runner.role].sort(),
    clone: {
      vmId: proxmox.template.vmId,
      nodeName: proxmox.template.node,
      datastoreId: proxmox.datastore,
      full: true,
      retries: 3,
    },
    cpu: { cores: runner.cores, type: "host" },
    memory: { dedicated: runner.memoryMb },
    disks: [
      {
        interface: "scsi0",
        datastoreId: proxmox.datastore,
        size: runner.diskGb,
        discard: "on",
        iothread: true,
      },
    ],
    scsiHardware: "virtio-scsi-single",
    networkDevices: [
      { bridge: proxmox.bridge, model: "virtio", ...(proxmox.vlan ? { vlanId: proxmox.vlan } : {}) },
    ],
    agent: { enabled: true, trim: true },
    operatingSystem: { type: "l26" },
    initialization: {
      datastoreId: proxmox.datastore,
      userAccount: { username: proxmox.sshUser, keys: proxmox.sshPublicKeys },
      ipConfigs: [
        {
          ipv4:
            runner.ip === "dhcp"
              ? { address: "dhcp" }
              : { address: runner.ip, gateway: proxmox.gateway as string },
        },
      ],
      ...(dns ? { dns } : {}),
    },
    onBoot: true,
    started: true,
    stopOnDestroy: true,
  };
}

/** The address remote commands use: the static one, else the first non-loopback address the agent reports. */
export function hostOf(runner: RunnerSpec, vm: proxmoxve.VmLegacy): pulumi.Output<string> {
  if (runner.ip !== "dhcp") return pulumi.output(runner.ip.split("/")[0]);
  return vm.ipv4Addresses.apply((perInterface) => {
    const found = (perInterface ?? []).flat().find((a) => a && !a.startsWith("127."));
    return found ?? "";
  });
}

export class RunnerVm extends pulumi.ComponentResource {
  public readonly vm: proxmoxve.VmLegacy;
  /** Completes once cloud-init has finished on the VM. */
  public readonly ready: command.remote.Command;
  public readonly host: pulumi.Output<string>;
  public readonly connection: command.types.input.remote.ConnectionArgs;

  constructor(name: string, args: RunnerVmArgs, opts?: pulumi.ComponentResourceOptions) {
    super("runner-fleet:proxmox:RunnerVm", name, {}, opts);

    this.vm = new proxmoxve.VmLegacy(`${name}-vm`, vmInputs(args.runner, args.stack, args.proxmox), {
      parent: this,
      provider: args.provider,
      dependsOn: args.cloneAfter,
      protect: args.protect,
      // The VM ID and name are fixed, so a replacement must remove the old VM first.
      deleteBeforeReplace: true,
    });
    this.host = hostOf(args.runner, this.vm);
    this.connection = {
      host: this.host,
      user: args.login.user,
      privateKey: args.login.privateKey,
      // A fresh clone takes a while to boot: keep dialling for about 10 minutes.
      dialErrorLimit: 40,
      perDialTimeout: 15,
    };
    this.ready = new command.remote.Command(
      `${name}-ready`,
      {
        connection: this.connection,
        create: READY_SCRIPT,
        // Re-run when the VM is replaced.
        triggers: [this.vm.id],
        logging: "stderr",
      },
      { parent: this, dependsOn: [this.vm] },
    );

    this.registerOutputs({ vmId: this.vm.vmId, host: this.host });
  }
}
