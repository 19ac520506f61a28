// validateFleetConfig on plain objects: one valid base config, one mutation per case, and the exact full list
// of error lines each mutation must produce; then the values the validator resolves (defaults, pool members,
// placement, VM IDs) and their stability when the fleet grows.
import * as assert from "node:assert/strict";
import { FleetSpec, RunnerSpec, validateFleetConfig } from "../stacks/validate";

type Config = Record<string, unknown>;
// Mutations reach into the plain config freely; a typo there makes the case fail, never pass by accident.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Mutation = (c: any) => void;

const SHA = "ba46ba7ce3a4d7236b16fbe44419fb453bc08f866b24f04d549ec89f1722a29e";
const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx9aD8f3nKk2Qm7Yp1sV4cT6uW0eR5tZ8iO2pL7jH3N test";
const KNOWN_NODES = "(known: pve1, pve2, pve3)";

/** A valid production-like config: two singles with static addresses, a pool of two, one environment. */
function baseConfig(): Config {
  return {
    github: { scope: "repository", repository: "deploy" },
    runner: { version: "2.321.0", sha256: SHA },
    proxmox: {
      nodes: [
        { name: "pve1", cores: 16, memoryMb: 32768 },
        { name: "pve2", cores: 16, memoryMb: 32768 },
        { name: "pve3" },
      ],
      template: { vmId: 9000, node: "pve1" },
      datastore: "local-lvm",
      bridge: "vmbr0",
      vmIdRange: { start: 8100, end: 8199 },
      gateway: "10.40.0.1",
      sshPublicKeys: [KEY],
    },
    runners: [
      {
        name: "prod-primary",
        role: "primary",
        node: "pve1",
        vmId: 8101,
        ip: "10.40.0.21/24",
        cores: 4,
        memoryMb: 8192,
        labels: ["deploy"],
      },
      {
        name: "prod-secondary",
        role: "secondary",
        node: "pve2",
        vmId: 8102,
        ip: "10.40.0.22/24",
        cores: 4,
        memoryMb: 8192,
        labels: ["deploy"],
      },
    ],
    pools: [{ name: "build", count: 2, role: "primary", nodes: ["pve1", "pve2"], labels: ["build"] }],
    environments: [
      { name: "production", reviewers: { users: ["alice"], teams: ["sre"] }, branches: ["main"] },
    ],
  };
}

function mutated(mutate: Mutation): Config {
  const c = structuredClone(baseConfig());
  mutate(c);
  return c;
}

function errorsOf(mutate: Mutation): string[] {
  const result = validateFleetConfig(mutated(mutate), "production");
  return result.ok ? [] : result.errors;
}

function fleetOf(mutate: Mutation = () => {}): FleetSpec {
  const result = validateFleetConfig(mutated(mutate), "production");
  if (!result.ok) assert.fail(`expected a valid config, got:\n${result.errors.join("\n")}`);
  return result.fleet;
}

function byName(fleet: FleetSpec): Record<string, RunnerSpec> {
  return Object.fromEntries(fleet.runners.map((r) => [r.name, r]));
}

const placementOf = (fleet: FleetSpec) =>
  Object.fromEntries(fleet.runners.map((r) => [r.name, { node: r.node, vmId: r.vmId }]));

describe("stack config validation", () => {
  it("accepts the base config", () => {
    const fleet = fleetOf();
    assert.deepEqual(
      fleet.runners.map((r) => r.name),
      ["prod-primary", "prod-secondary", "build-1", "build-2"],
    );
  });

  const cases: [string, Mutation, string[]][] = [
    [
      "unknown key with a near miss",
      (c) => {
        c.runners[0].memroyMb = c.runners[0].memoryMb;
        delete c.runners[0].memoryMb;
      },
      ["runner-fleet:runners[0].memroyMb: unknown key; did you mean memoryMb?"],
    ],
    [
      "unknown key without a near miss",
      (c) => (c.proxmox.storagePool = "fast"),
      ["runner-fleet:proxmox.storagePool: unknown key"],
    ],
    [
      "unknown top-level key of the namespace",
      (c) => (c.pool = c.pools),
      ["runner-fleet:pool: unknown key; did you mean runner-fleet:pools?"],
    ],
    [
      "duplicate single runner names",
      (c) => (c.runners[1].name = "prod-primary"),
      ["runner-fleet:runners[1].name: runner name prod-primary is already used by runner-fleet:runners[0]"],
    ],
    [
      "pool member named like a single runner",
      (c) => c.runners.push({ name: "build-1", role: "primary", node: "pve3" }),
      [
        "runner-fleet:pools[0].name (member build-1): runner name build-1 is already used by runner-fleet:runners[2]",
      ],
    ],
    [
      "duplicate explicit VM IDs",
      (c) => (c.runners[1].vmId = 8101),
      ["runner-fleet:runners[1].vmId: 8101 is used by runner prod-primary"],
    ],
    [
      "explicit VM ID outside vmIdRange",
      (c) => (c.runners[0].vmId = 8200),
      ["runner-fleet:runners[0].vmId: 8200 is outside vmIdRange 8100-8199"],
    ],
    [
      "VM ID of the template (outside the range too)",
      (c) => (c.runners[0].vmId = 9000),
      [
        "runner-fleet:runners[0].vmId: 9000 is used by the template",
        "runner-fleet:runners[0].vmId: 9000 is outside vmIdRange 8100-8199",
      ],
    ],
    [
      "VM ID of a template inside the range",
      (c) => {
        c.proxmox.template.vmId = 8150;
        c.runners[1].vmId = 8150;
      },
      ["runner-fleet:runners[1].vmId: 8150 is used by the template"],
    ],
    [
      "pool vmIdStart overlapping an explicit VM ID",
      (c) => (c.pools[0].vmIdStart = 8100),
      ["runner-fleet:pools[0].vmIdStart (member build-2): 8101 is used by runner prod-primary"],
    ],
    [
      "vmIdRange ending before it starts",
      (c) => (c.proxmox.vmIdRange = { start: 8100, end: 8050 }),
      ["runner-fleet:proxmox.vmIdRange.end: 8050 is below start 8100"],
    ],
    [
      "vmIdRange starting below 100",
      (c) => (c.proxmox.vmIdRange = { start: 50, end: 8199 }),
      ["runner-fleet:proxmox.vmIdRange.start: must be >= 100 (Proxmox VM IDs)"],
    ],
    [
      "vmIdRange too small for the runners without an ID",
      (c) => (c.proxmox.vmIdRange = { start: 8101, end: 8103 }),
      ["runner-fleet:proxmox.vmIdRange: 2 runners need an ID but only 1 is free in 8101-8103"],
    ],
    [
      "unknown node of a single runner",
      (c) => (c.runners[0].node = "pve9"),
      [`runner-fleet:runners[0].node: unknown node pve9 ${KNOWN_NODES}`],
    ],
    [
      "unknown node of a pool",
      (c) => (c.pools[0].nodes = ["pve1", "pve-2"]),
      [`runner-fleet:pools[0].nodes[1]: unknown node pve-2 ${KNOWN_NODES}`],
    ],
    [
      "unknown pool node that no member uses yet",
      (c) => {
        c.pools[0].count = 1;
        c.pools[0].nodes = ["pve1", "pve4"];
      },
      [`runner-fleet:pools[0].nodes[1]: unknown node pve4 ${KNOWN_NODES}`],
    ],
    [
      "unknown template node",
      (c) => (c.proxmox.template.node = "pve0"),
      [`runner-fleet:proxmox.template.node: unknown node pve0 ${KNOWN_NODES}`],
    ],
    [
      "node listed twice",
      (c) => c.proxmox.nodes.push({ name: "pve2" }),
      ["runner-fleet:proxmox.nodes[3].name: node pve2 is listed twice"],
    ],
    [
      "label with a space",
      (c) => c.runners[0].labels.push("has space"),
      [
        "runner-fleet:runners[0].labels[1]: is not a valid runner label (letters, digits, '.', '_' and '-' only, 1-256 characters)",
      ],
    ],
    [
      "label with a comma",
      (c) => (c.pools[0].labels = ["a,b"]),
      [
        "runner-fleet:pools[0].labels[0]: is not a valid runner label (letters, digits, '.', '_' and '-' only, 1-256 characters)",
      ],
    ],
    [
      "label listed twice (GitHub ignores case)",
      (c) => c.runners[0].labels.push("Deploy"),
      ["runner-fleet:runners[0].labels[1]: label Deploy is listed twice"],
    ],
    [
      "pool label listed twice: one line, not one per member",
      (c) => (c.pools[0].labels = ["build", "docker", "build"]),
      ["runner-fleet:pools[0].labels[2]: label build is listed twice"],
    ],
    [
      "extra label listed twice",
      (c) => (c.runner.extraLabels = ["proxmox", "proxmox"]),
      ["runner-fleet:runner.extraLabels[1]: label proxmox is listed twice"],
    ],
    ["zero cores", (c) => (c.runners[0].cores = 0), ["runner-fleet:runners[0].cores: must be > 0"]],
    ["negative memory", (c) => (c.pools[0].memoryMb = -1), ["runner-fleet:pools[0].memoryMb: must be > 0"]],
    [
      "fractional disk size",
      (c) => (c.runners[1].diskGb = 40.5),
      ["runner-fleet:runners[1].diskGb: must be an integer, got number 40.5"],
    ],
    [
      "size given as text",
      (c) => (c.runners[1].cores = "4"),
      ['runner-fleet:runners[1].cores: must be a number, got string "4"'],
    ],
    [
      "address with an octet above 255",
      (c) => (c.runners[0].ip = "10.40.0.300/24"),
      ["runner-fleet:runners[0].ip: must be dhcp or an IPv4 address with prefix, e.g. 10.0.10.21/24"],
    ],
    [
      "address without a prefix",
      (c) => (c.runners[0].ip = "10.40.0.21"),
      ["runner-fleet:runners[0].ip: must be dhcp or an IPv4 address with prefix, e.g. 10.0.10.21/24"],
    ],
    [
      "invalid pool address",
      (c) => (c.pools[0].ips = ["10.40.0.31/33", "10.40.0.32/24"]),
      ["runner-fleet:pools[0].ips[0]: must be an IPv4 address with prefix, e.g. 10.0.10.21/24"],
    ],
    [
      "network address of the subnet",
      (c) => (c.runners[0].ip = "10.40.0.0/24"),
      ["runner-fleet:runners[0].ip: 10.40.0.0 is the network address of 10.40.0.0/24"],
    ],
    [
      "broadcast address of the subnet",
      (c) => (c.runners[0].ip = "10.40.0.255/24"),
      ["runner-fleet:runners[0].ip: 10.40.0.255 is the broadcast address of 10.40.0.0/24"],
    ],
    [
      "the gateway's own address",
      (c) => (c.runners[0].ip = "10.40.0.1/24"),
      ["runner-fleet:runners[0].ip: 10.40.0.1 is the gateway's address"],
    ],
    [
      "duplicate addresses of singles",
      (c) => (c.runners[1].ip = "10.40.0.21/24"),
      ["runner-fleet:runners[1].ip: 10.40.0.21 is already used by runner prod-primary"],
    ],
    [
      "pool address used by a single runner",
      (c) => (c.pools[0].ips = ["10.40.0.31/24", "10.40.0.21/24"]),
      ["runner-fleet:pools[0].ips[1]: 10.40.0.21 is already used by runner prod-primary"],
    ],
    [
      "gateway outside the runner's subnet",
      (c) => (c.runners[0].ip = "10.41.0.21/24"),
      ["runner-fleet:runners[0].ip: gateway 10.40.0.1 is outside 10.41.0.21/24"],
    ],
    [
      "static addresses without a gateway",
      (c) => delete c.proxmox.gateway,
      [
        "runner-fleet:runners[0].ip: a static address needs runner-fleet:proxmox.gateway",
        "runner-fleet:runners[1].ip: a static address needs runner-fleet:proxmox.gateway",
      ],
    ],
    [
      "version latest",
      (c) => (c.runner.version = "latest"),
      ["runner-fleet:runner.version: must be a pinned version x.y.z, e.g. 2.321.0"],
    ],
    [
      "version without patch",
      (c) => (c.runner.version = "2.321"),
      ["runner-fleet:runner.version: must be a pinned version x.y.z, e.g. 2.321.0"],
    ],
    [
      "sha256 too short",
      (c) => (c.runner.sha256 = SHA.slice(1)),
      ["runner-fleet:runner.sha256: must be 64 hex digits (SHA-256 of the linux-x64 tarball)"],
    ],
    [
      "sha256 not hex",
      (c) => (c.runner.sha256 = `${SHA.slice(1)}g`),
      ["runner-fleet:runner.sha256: must be 64 hex digits (SHA-256 of the linux-x64 tarball)"],
    ],
    ["pool count -1", (c) => (c.pools[0].count = -1), ["runner-fleet:pools[0].count: must be >= 0"]],
    [
      "role tertiary",
      (c) => (c.runners[1].role = "tertiary"),
      ["runner-fleet:runners[1].role: must be primary or secondary"],
    ],
    [
      "seven reviewers",
      (c) => (c.environments[0].reviewers = { users: ["a", "b", "c", "d", "e"], teams: ["t1", "t2"] }),
      ["runner-fleet:environments[0].reviewers: 7 reviewers; GitHub allows at most 6"],
    ],
    [
      "environment defined twice",
      (c) => c.environments.push({ name: "Production" }),
      ["runner-fleet:environments[1].name: Production is already defined at environments[0]"],
    ],
    [
      "primary and secondary single on the same node",
      (c) => (c.runners[1].node = "pve1"),
      [
        "runner-fleet:runners[1].node: secondary runner prod-secondary is on node pve1 with primary runner prod-primary; place them on different nodes",
      ],
    ],
    [
      "node cores exceeded",
      (c) => (c.proxmox.nodes[0].cores = 5),
      ["runner-fleet:proxmox.nodes[0].cores: runners on pve1 need 6 cores; capacity is 5"],
    ],
    [
      "node memory exceeded",
      (c) => (c.proxmox.nodes[1].memoryMb = 10000),
      ["runner-fleet:proxmox.nodes[1].memoryMb: runners on pve2 need 12288 MB; capacity is 10000"],
    ],
    [
      "fewer pool addresses than members",
      (c) => (c.pools[0].ips = ["10.40.0.31/24"]),
      ["runner-fleet:pools[0].ips: 1 address(es) for 2 members; give one per member"],
    ],
    [
      "pool member names longer than a DNS label",
      (c) => (c.pools[0].name = "b".repeat(62)),
      [
        `runner-fleet:pools[0].name: member name ${"b".repeat(62)}-2 is longer than 63 characters; shorten the pool name`,
      ],
    ],
    [
      "runner user root",
      (c) => (c.runner.user = "root"),
      ["runner-fleet:runner.user: must not be root: the runner runs as a non-root user"],
    ],
    [
      "runner group with repository scope",
      (c) => (c.github.runnerGroup = "deploy"),
      ["runner-fleet:github.runnerGroup: runner groups exist only for scope organization"],
    ],
    [
      "email contact point without addresses",
      (c) =>
        (c.monitoring = { grafana: { prometheusDatasourceUid: "prom", contactPoint: { type: "email" } } }),
      [
        "runner-fleet:monitoring.grafana.contactPoint.addresses: an email contact point needs at least one address",
      ],
    ],
    [
      "addresses on a webhook contact point",
      (c) =>
        (c.monitoring = {
          grafana: {
            prometheusDatasourceUid: "prom",
            contactPoint: { type: "webhook", addresses: ["ops@example.com"] },
          },
        }),
      [
        "runner-fleet:monitoring.grafana.contactPoint.addresses: addresses are only for an email contact point; a webhook contact point sends to runner-fleet:alertWebhookUrl",
      ],
    ],
    ["missing runner-fleet:runner", (c) => delete c.runner, ["runner-fleet:runner: is required"]],
    [
      "missing required field",
      (c) => delete c.proxmox.datastore,
      ["runner-fleet:proxmox.datastore: is required"],
    ],
    [
      "several problems at once, also among runners next to a malformed one",
      (c) => {
        c.runner.version = "latest";
        c.runners[0].memroyMb = 8192; // malformed entry: left out of the fleet-wide rules
        c.runners[1].vmId = 8150;
        c.runners.push({ name: "extra", role: "primary", node: "pve3", vmId: 8150 });
        c.pools[0].nodes = ["pve1", "pve7"];
        c.environments[0].reviewers.users = ["a", "b", "c", "d", "e", "f"];
      },
      [
        "runner-fleet:runner.version: must be a pinned version x.y.z, e.g. 2.321.0",
        "runner-fleet:runners[0].memroyMb: unknown key; did you mean memoryMb?",
        "runner-fleet:environments[0].reviewers: 7 reviewers; GitHub allows at most 6",
        `runner-fleet:pools[0].nodes[1]: unknown node pve7 ${KNOWN_NODES}`,
        "runner-fleet:runners[2].vmId: 8150 is used by runner prod-secondary",
      ],
    ],
  ];

  for (const [title, mutate, expected] of cases) {
    it(`rejects: ${title}`, () => {
      assert.deepEqual(errorsOf(mutate), expected);
    });
  }

  it("reports nothing but what is wrong: every case's base is valid", () => {
    // Guards the table: each case must fail because of its mutation, not because the base is broken.
    assert.equal(validateFleetConfig(baseConfig(), "production").ok, true);
  });
});

describe("stack config resolution", () => {
  it("applies the defaults", () => {
    const fleet = fleetOf((c) => {
      c.runners = [{ name: "solo", role: "primary", node: "pve3" }];
      delete c.pools;
      delete c.environments;
    });
    assert.deepEqual(fleet.runners, [
      {
        name: "solo",
        role: "primary",
        node: "pve3",
        vmId: 8166, // 8100 + fnv1a("solo") % 100
        ip: "dhcp",
        cores: 2,
        memoryMb: 4096,
        diskGb: 40,
        labels: [],
        source: "runner-fleet:runners[0]",
      },
    ]);
    assert.deepEqual(fleet.runner, {
      version: "2.321.0",
      sha256: SHA,
      user: "runner",
      ephemeral: false,
      extraLabels: [],
      rolloutBatchSize: 1,
    });
    assert.equal(fleet.proxmox.cloneConcurrency, 2);
    assert.equal(fleet.proxmox.sshUser, "fleet");
    assert.deepEqual(fleet.environments, []);
    assert.equal(fleet.monitoring, undefined);
    assert.equal(fleet.stack, "production");
  });

  it("applies environment and monitoring defaults", () => {
    const fleet = fleetOf((c) => {
      c.environments = [{ name: "staging" }];
      c.monitoring = { grafana: { prometheusDatasourceUid: "prom" } };
    });
    assert.deepEqual(fleet.environments, [
      {
        name: "staging",
        reviewers: { users: [], teams: [] },
        waitTimerMinutes: 0,
        preventSelfReview: false,
        canAdminsBypass: false,
        branches: [],
        variables: {},
      },
    ]);
    assert.deepEqual(fleet.monitoring, {
      grafana: { prometheusDatasourceUid: "prom" },
      prometheus: {},
      exporter: { port: 9100 },
      alerts: {
        primaryOfflineMinutes: 5,
        secondaryOfflineMinutes: 10,
        saturatedMinutes: 15,
        workDiskFreeGb: 10,
        failedJobsPerHour: 3,
      },
    });
  });

  it("names pool members <pool>-1..n and places them round-robin over the pool's nodes", () => {
    const fleet = fleetOf((c) => {
      c.pools[0].count = 5;
      c.pools[0].nodes = ["pve1", "pve2", "pve3"];
      c.pools[0].ips = ["10.40.0.31/24", "10.40.0.32/24", "10.40.0.33/24", "10.40.0.34/24", "10.40.0.35/24"];
    });
    const members = fleet.runners.filter((r) => r.pool);
    assert.deepEqual(
      members.map((r) => [r.name, r.node, r.ip, r.pool]),
      [
        ["build-1", "pve1", "10.40.0.31/24", { name: "build", index: 1 }],
        ["build-2", "pve2", "10.40.0.32/24", { name: "build", index: 2 }],
        ["build-3", "pve3", "10.40.0.33/24", { name: "build", index: 3 }],
        ["build-4", "pve1", "10.40.0.34/24", { name: "build", index: 4 }],
        ["build-5", "pve2", "10.40.0.35/24", { name: "build", index: 5 }],
      ],
    );
    for (const m of members) {
      assert.equal(m.role, "primary");
      assert.deepEqual(m.labels, ["build"]);
      assert.equal(m.source, "runner-fleet:pools[0]");
      assert.deepEqual([m.cores, m.memoryMb, m.diskGb], [2, 4096, 40]);
    }
  });

  it("pool of zero members declares no runner", () => {
    const fleet = fleetOf((c) => (c.pools[0].count = 0));
    assert.deepEqual(
      fleet.runners.map((r) => r.name),
      ["prod-primary", "prod-secondary"],
    );
  });

  it("allocates VM IDs deterministically: explicit ones kept, the others from each name's slot", () => {
    // Slot of a name: vmIdRange.start + FNV-1a(name) % size, computed independently of the implementation.
    assert.deepEqual(placementOf(fleetOf()), {
      "prod-primary": { node: "pve1", vmId: 8101 },
      "prod-secondary": { node: "pve2", vmId: 8102 },
      "build-1": { node: "pve1", vmId: 8181 },
      "build-2": { node: "pve2", vmId: 8124 },
    });
    assert.deepEqual(fleetOf(), fleetOf());
  });

  it("moves a runner whose slot is taken to the next free ID", () => {
    const fleet = fleetOf((c) => (c.runners[0].vmId = 8181));
    assert.equal(byName(fleet)["build-1"].vmId, 8182);
  });

  it("keeps node and VM ID of existing runners when a pool grows from 2 to 3", () => {
    const before = placementOf(fleetOf());
    const after = placementOf(fleetOf((c) => (c.pools[0].count = 3)));
    assert.deepEqual(after, { ...before, "build-3": { node: "pve1", vmId: 8143 } });
  });

  it("keeps node and VM ID of existing runners when a single runner is added", () => {
    const before = placementOf(fleetOf());
    const after = placementOf(
      fleetOf((c) => c.runners.push({ name: "prod-canary", role: "primary", node: "pve3" })),
    );
    assert.deepEqual(after, { ...before, "prod-canary": { node: "pve3", vmId: 8199 } });
  });

  it("gives pool members consecutive IDs from an explicit vmIdStart", () => {
    const fleet = fleetOf((c) => {
      c.pools[0].vmIdStart = 8150;
      c.pools[0].count = 3;
    });
    assert.deepEqual(
      fleet.runners.filter((r) => r.pool).map((r) => r.vmId),
      [8150, 8151, 8152],
    );
    const outside = errorsOf((c) => {
      c.pools[0].vmIdStart = 8198;
      c.pools[0].count = 3;
    });
    assert.deepEqual(outside, [
      "runner-fleet:pools[0].vmIdStart (member build-3): 8200 is outside vmIdRange 8100-8199",
    ]);
  });
});
