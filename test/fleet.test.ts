// Mock-engine tests of the fleet components: exact inputs, parents, dependencies, secretness, stability.
import * as github from "@pulumi/github";
import * as proxmoxve from "@muhlba91/pulumi-proxmoxve";
import * as pulumi from "@pulumi/pulumi";
import { strict as assert } from "assert";
import { READY_SCRIPT } from "../components/runnerVm";
import { cloneOrder, rolloutBatches, RunnerFleet } from "../components/runnerFleet";
import { Plan } from "../tools/engine";
import { diffPlans } from "../tools/diff";
import { FleetSpec, validateFleetConfig } from "../stacks/validate";
import { find, ofType, planOf, T } from "./support/harness";

const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nfleet-test-key\n-----END OPENSSH PRIVATE KEY-----";
const GITHUB_TOKEN = "ghp_fleetTestToken000000000000000000000";

function baseConfig(): Record<string, unknown> {
  return {
    github: { scope: "organization", repository: "deploy", runnerGroup: "prod-deploy" },
    runner: {
      version: "2.321.0",
      sha256: "ba46ba7ce3a4d7236b16fbe44419fb453bc08f866b24f04d549ec89f1722a29e",
      extraLabels: ["proxmox"],
    },
    proxmox: {
      nodes: [{ name: "pve1" }, { name: "pve2" }],
      template: { vmId: 9000, node: "pve1" },
      datastore: "ceph-vm",
      bridge: "vmbr0",
      vlan: 40,
      vmIdRange: { start: 8100, end: 8299 },
      gateway: "10.40.0.1",
      dns: ["10.40.0.2"],
      sshPublicKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAItest fleet"],
    },
    runners: [
      {
        name: "prod-primary",
        role: "primary",
        node: "pve1",
        vmId: 8101,
        ip: "10.40.0.21/24",
        labels: ["deploy"],
      },
      { name: "prod-secondary", role: "secondary", node: "pve2", vmId: 8102, labels: ["deploy"] },
    ],
    pools: [{ name: "build", count: 2, role: "primary", nodes: ["pve1", "pve2"], labels: ["build"] }],
    environments: [
      {
        name: "production",
        reviewers: { users: ["alice"], teams: ["sre"] },
        waitTimerMinutes: 5,
        preventSelfReview: true,
        branches: ["main"],
      },
    ],
  };
}

function spec(mutate: (c: Record<string, unknown>) => void = () => {}): FleetSpec {
  const raw = baseConfig();
  mutate(raw);
  const result = validateFleetConfig(raw, "production");
  if (!result.ok) throw new Error(result.errors.join("\n"));
  return result.fleet;
}

function fleetPlan(fleet: FleetSpec, protect = false): Promise<Plan> {
  return planOf(
    () => {
      const proxmox = new proxmoxve.Provider("proxmoxve", { endpoint: "https://pve:8006/" });
      const gh = new github.Provider("github", { owner: "example-org" });
      new RunnerFleet("runner-fleet", {
        fleet,
        login: { user: fleet.proxmox.sshUser, privateKey: pulumi.secret(PRIVATE_KEY) },
        proxmoxProvider: proxmox,
        githubProvider: gh,
        githubOwner: "example-org",
        githubToken: pulumi.secret(GITHUB_TOKEN),
        protect,
      });
    },
    { stack: "production" },
  );
}

describe("RunnerVm", () => {
  let plan: Plan;
  before(async () => {
    plan = await fleetPlan(spec());
  });

  it("clones the template with the exact VM inputs", () => {
    const vm = find(plan, T.vm, "prod-primary-vm");
    assert.deepEqual(vm.inputs, {
      agent: { enabled: true, trim: true },
      clone: { datastoreId: "ceph-vm", full: true, nodeName: "pve1", retries: 3, vmId: 9000 },
      cpu: { cores: 2, type: "host" },
      description: "GitHub Actions runner prod-primary (primary), managed by runner-fleet stack production",
      disks: [{ datastoreId: "ceph-vm", discard: "on", interface: "scsi0", iothread: true, size: 40 }],
      initialization: {
        datastoreId: "ceph-vm",
        dns: { servers: ["10.40.0.2"] },
        ipConfigs: [{ ipv4: { address: "10.40.0.21/24", gateway: "10.40.0.1" } }],
        userAccount: { keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAItest fleet"], username: "fleet" },
      },
      memory: { dedicated: 4096 },
      name: "prod-primary",
      networkDevices: [{ bridge: "vmbr0", model: "virtio", vlanId: 40 }],
      nodeName: "pve1",
      onBoot: true,
      operatingSystem: { type: "l26" },
      scsiHardware: "virtio-scsi-single",
      started: true,
      stopOnDestroy: true,
      tags: ["primary", "production", "runner-fleet"],
      vmId: 8101,
    });
    assert.equal(vm.parent, `${T.runnerVm}::prod-primary`);
    assert.equal(find(plan, T.runnerVm, "prod-primary").parent, `${T.fleet}::runner-fleet`);
  });

  it("uses DHCP when no address is given", () => {
    const vm = find(plan, T.vm, "prod-secondary-vm");
    assert.deepEqual((vm.inputs.initialization as { ipConfigs: unknown }).ipConfigs, [
      { ipv4: { address: "dhcp" } },
    ]);
  });

  it("waits for cloud-init in a readiness command that depends on the VM", () => {
    const ready = find(plan, T.remote, "prod-primary-ready");
    assert.equal(ready.parent, `${T.runnerVm}::prod-primary`);
    assert.deepEqual(ready.dependsOn, [`${T.vm}::prod-primary-vm`]);
    assert.equal(ready.inputs.create, READY_SCRIPT);
    assert.equal(ready.inputs.connection, "[secret]");
  });

  it("never lets the SSH private key or GitHub token out as plain text", () => {
    const text = JSON.stringify(plan);
    assert.ok(!text.includes("fleet-test-key"), "private key leaked into resource inputs");
    assert.ok(!text.includes(GITHUB_TOKEN), "GitHub token leaked into resource inputs");
    for (const r of ofType(plan, T.remote).concat(ofType(plan, T.copy)))
      assert.equal(r.inputs.connection, "[secret]");
    for (const r of ofType(plan, T.local)) {
      assert.equal((r.inputs.environment as Record<string, unknown>).GITHUB_TOKEN, "[secret]", r.name);
    }
  });
});

describe("registration without churn", () => {
  it("invokes no provider function but the ID look-ups, and mints no token at plan time", async () => {
    const plan = await fleetPlan(spec());
    assert.deepEqual(plan.calls, [
      "github:index/getRepository:getRepository",
      "github:index/getTeam:getTeam",
      "github:index/getUser:getUser",
    ]);
    // The token is the stdout of a command that runs only at apply time: at plan time it is unknown, and
    // it is a secret wherever it is used.
    for (const r of ofType(plan, T.remote).filter((x) => x.name.endsWith("-install"))) {
      assert.equal(r.inputs.stdin, "[secret]", r.name);
    }
    const token = find(plan, T.local, "prod-primary-token");
    assert.match(String(token.inputs.create), /^set -- registration-token\n/);
    assert.equal(token.inputs.logging, "stderr");
  });

  it("an unchanged fleet plans to identical inputs", async () => {
    const a = await fleetPlan(spec());
    const b = await fleetPlan(spec());
    assert.equal(JSON.stringify(a), JSON.stringify(b));
  });
});

describe("clone bounding", () => {
  it("chains clones of one template so at most cloneConcurrency run at once", async () => {
    const fleet = spec((c) => {
      (c.pools as { count: number }[])[0].count = 3;
      (c.proxmox as Record<string, unknown>).cloneConcurrency = 2;
    });
    const ids = Object.fromEntries(fleet.runners.map((r) => [r.name, r.vmId]));
    const byId = fleet.runners.map((r) => r.name).sort((a, b) => ids[a] - ids[b]);
    const plan = await fleetPlan(fleet);
    byId.forEach((name, i) => {
      const vmDeps = find(plan, T.vm, `${name}-vm`).dependsOn;
      assert.deepEqual(vmDeps, i < 2 ? [] : [`${T.vm}::${byId[i - 2]}-vm`], name);
    });
    assert.deepEqual(
      [...cloneOrder(fleet.runners, 2).entries()],
      byId.slice(2).map((n, i) => [n, byId[i]]),
    );
  });

  it("with concurrency 1 every clone waits for the previous one", () => {
    const fleet = spec();
    const order = cloneOrder(fleet.runners, 1);
    assert.equal(order.size, fleet.runners.length - 1);
  });
});

describe("placement and stability", () => {
  it("places pool members round-robin over their nodes", () => {
    const fleet = spec((c) => ((c.pools as { count: number }[])[0].count = 5));
    const members = fleet.runners.filter((r) => r.pool);
    assert.deepEqual(
      members.map((r) => [r.name, r.node]),
      [
        ["build-1", "pve1"],
        ["build-2", "pve2"],
        ["build-3", "pve1"],
        ["build-4", "pve2"],
        ["build-5", "pve1"],
      ],
    );
  });

  it("growing a pool adds only the new member's resources and changes no existing input", async () => {
    const before = await fleetPlan(spec());
    const after = await fleetPlan(spec((c) => ((c.pools as { count: number }[])[0].count = 3)));
    const d = diffPlans(before, after, "before");
    assert.deepEqual(d.removed, []);
    assert.deepEqual(d.changed, []);
    assert.deepEqual(
      d.added.map((r) => r.name),
      [
        "build-3",
        "build-3",
        "build-3-deregister",
        "build-3-install",
        "build-3-install-script",
        "build-3-ready",
        "build-3-token",
        "build-3-vm",
      ],
    );
    assert.ok(d.added.every((r) => r.group === "build-3"));
  });

  it("a runner version bump changes only per-runner commands, never a VM", async () => {
    const before = await fleetPlan(spec());
    const after = await fleetPlan(spec((c) => ((c.runner as Record<string, unknown>).version = "2.322.0")));
    const d = diffPlans(before, after, "before");
    assert.deepEqual(d.added, []);
    assert.deepEqual(d.removed, []);
    const types = new Set(d.changed.map((c) => c.type));
    assert.deepEqual([...types].sort(), [T.copy, T.remote, T.local].sort());
    assert.ok(
      d.changed.every((c) => /-(install|install-script|token)$/.test(c.name)),
      "unexpected change",
    );
    assert.equal(d.changed.length, 4 * 3);
    const install = d.changed.find((c) => c.name === "prod-primary-install");
    assert.deepEqual(
      install?.changes.filter((c) => c.path.startsWith("triggers")).map((c) => [c.path, c.new]),
      [
        [
          "triggers[2]",
          "RUNNER_DOWNLOAD_URL=https://github.com/actions/runner/releases/download/v2.322.0/actions-runner-linux-x64-2.322.0.tar.gz",
        ],
        ["triggers[0]", "RUNNER_VERSION=2.322.0"],
      ].sort(),
    );
  });
});

describe("protection and rollout", () => {
  it("protects VMs, deregistration and environments when asked, and nothing else", async () => {
    const plan = await fleetPlan(spec(), true);
    const protectedNames = plan.resources.filter((r) => r.protect).map((r) => `${r.type}::${r.name}`);
    assert.deepEqual(
      protectedNames.sort(),
      [
        ...["build-1", "build-2", "prod-primary", "prod-secondary"].flatMap((n) => [
          `${T.vm}::${n}-vm`,
          `${T.local}::${n}-deregister`,
        ]),
        `${T.env}::env-production`,
        `${T.runnerGroup}::runner-group-prod-deploy`,
      ].sort(),
    );
    const unprotected = await fleetPlan(spec(), false);
    assert.equal(unprotected.resources.filter((r) => r.protect).length, 0);
  });

  it("re-registers in batches: each batch's installs wait for the previous batch", async () => {
    const fleet = spec((c) => ((c.runner as Record<string, unknown>).rolloutBatchSize = 2));
    const batches = rolloutBatches(fleet.runners, 2);
    assert.deepEqual(batches, [
      ["build-1", "build-2"],
      ["prod-primary", "prod-secondary"],
    ]);
    const plan = await fleetPlan(fleet);
    const installDeps = (n: string) =>
      find(plan, T.remote, `${n}-install`).dependsOn.filter(
        (d) => d.startsWith(`${T.remote}::`) && d.endsWith("-install"),
      );
    assert.deepEqual(installDeps("build-1"), []);
    assert.deepEqual(installDeps("build-2"), []);
    for (const n of ["prod-primary", "prod-secondary"]) {
      assert.deepEqual(installDeps(n), [`${T.remote}::build-1-install`, `${T.remote}::build-2-install`]);
    }
    // The first batch waits for the runner group it registers into.
    assert.ok(
      find(plan, T.remote, "build-1-install").dependsOn.includes(
        `${T.runnerGroup}::runner-group-prod-deploy`,
      ),
    );
  });
});
