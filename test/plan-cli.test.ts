// The offline plan CLI, run for real as a child process (`tools/plan.ts` under ts-node, cwd = repository
// root) against test/fixtures/three-node.yaml and variants of it written to a temporary directory.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as YAML from "yaml";
import { showChange, type Change, type PlanDiff } from "../tools/diff";
import type { Plan } from "../tools/engine";

const ROOT = path.resolve(__dirname, "..");
const FIXTURE = "test/fixtures/three-node.yaml";
const VM = "proxmoxve:index/vmLegacy:VmLegacy";
const RUNNER_VM = "runner-fleet:proxmox:RunnerVm";
const FLEET_REF = "runner-fleet:fleet:RunnerFleet::runner-fleet";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

// The CLI's JSON is typed by the modules that produce it.
type Diff = PlanDiff;

const PLAN = [process.execPath, "-r", "ts-node/register/transpile-only", "tools/plan.ts"];
let runCount = 0;

/**
 * Runs a command in the repository root, without the Pulumi settings of the test process, with stdout and
 * stderr going to files: a file takes every byte a process writes before it exits, a pipe only what its
 * reader drained in time (see the pipe test below).
 */
function run(argv: string[]): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("PULUMI_")));
  const base = path.join(tmp, `run-${++runCount}`);
  const out = fs.openSync(`${base}.out`, "w");
  const err = fs.openSync(`${base}.err`, "w");
  return new Promise<Run>((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: ROOT, env, stdio: ["ignore", out, err] });
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({
        code,
        stdout: fs.readFileSync(`${base}.out`, "utf8"),
        stderr: fs.readFileSync(`${base}.err`, "utf8"),
      }),
    );
  }).finally(() => {
    fs.closeSync(out);
    fs.closeSync(err);
  });
}

/** `npm run plan -- <args>`. */
function plan(...args: string[]): Promise<Run> {
  return run([...PLAN, ...args]);
}

const lines = (text: string) => text.split("\n").filter((l) => l !== "");

function explain(run: Run): string {
  return `exit ${run.code}\n--- stderr ---\n${run.stderr}`;
}

/** Every stdout must be free of the placeholder text: secrets never reach the plan in any form. */
function assertNoPlaceholder(run: Run): void {
  assert.ok(!run.stdout.includes("PLACEHOLDER"), "stdout contains the secure value's text");
  assert.ok(!run.stdout.includes("secret placeholder"), "stdout contains the loader's stand-in secret");
}

// The fixture, the plan of the fixture (twice), and variants of the fixture.
type Doc = { config: Record<string, unknown> };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Edit = (config: any) => void;
const fixtureText = fs.readFileSync(path.join(ROOT, FIXTURE), "utf8");
let tmp: string;

/** Writes the fixture with `edit` applied to `<tmp>/<dir>/three-node.yaml` (same stack name as the fixture). */
function variant(dir: string, edit: Edit): string {
  const doc = YAML.parse(fixtureText) as Doc;
  edit(doc.config);
  const file = path.join(tmp, dir, "three-node.yaml");
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, YAML.stringify(doc));
  return file;
}

/** `a.b[0].c` -> leaf, like the diff's input paths. */
function leaves(value: unknown, prefix = "", out: [string, unknown][] = []): [string, unknown][] {
  if (Array.isArray(value)) value.forEach((v, i) => leaves(v, `${prefix}[${i}]`, out));
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) leaves(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.push([prefix, value]);
  return out;
}

interface Target {
  targets: string[];
  labels: { runner: string };
}

/** A Prometheus file_sd target list given as JSON text, else undefined. */
function fileSd(v: unknown): Target[] | undefined {
  if (typeof v !== "string" || !v.trimStart().startsWith("[")) return undefined;
  try {
    const list = JSON.parse(v) as Target[];
    return Array.isArray(list) && list.every((t) => Array.isArray(t.targets) && t.labels) ? list : undefined;
  } catch {
    return undefined;
  }
}

/** A target list as data sorted by runner, any other value unchanged. */
function asData(v: unknown): unknown {
  const list = fileSd(v);
  return list ? [...list].sort((a, b) => (a.labels.runner < b.labels.runner ? -1 : 1)) : v;
}

describe("plan CLI (tools/plan.ts as a child process)", function () {
  this.timeout(120_000);
  let first: Run;
  let second: Run;
  let fixturePlan: Plan;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "plan-cli-test-"));
    [first, second] = await Promise.all([
      plan("--config", FIXTURE, "--json"),
      plan("--config", FIXTURE, "--json"),
    ]);
    assert.equal(first.code, 0, explain(first));
    fixturePlan = JSON.parse(first.stdout) as Plan;
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe("--config test/fixtures/three-node.yaml --json", () => {
    it("exits 0 with the plan of stack three-node on stdout and nothing on stderr", () => {
      assert.equal(first.code, 0, explain(first));
      assert.equal(first.stderr, "");
      assert.equal(fixturePlan.project, "runner-fleet");
      assert.equal(fixturePlan.stack, "three-node");
    });

    it("declares one VM per runner with the node, VM ID and address the config resolves to", () => {
      const vms = fixturePlan.resources.filter((r) => r.type === VM);
      const actual = Object.fromEntries(
        vms.map((r) => {
          const inputs = r.inputs as {
            name: string;
            nodeName: string;
            vmId: number;
            initialization: { ipConfigs: { ipv4: { address: string; gateway?: string } }[] };
          };
          return [
            inputs.name,
            {
              resource: r.name,
              node: inputs.nodeName,
              vmId: inputs.vmId,
              ipv4: inputs.initialization.ipConfigs[0].ipv4,
            },
          ];
        }),
      );
      const gateway = "10.60.0.1";
      // Pool members: lab-build-<i> on nodes[(i - 1) % 3] with ips[i - 1]. VM IDs without `vmId`: the first
      // free ID at or after 6100 + FNV-1a(name) % 100, names in natural order (6101 is lab-primary's).
      assert.deepEqual(actual, {
        "lab-primary": {
          resource: "lab-primary-vm",
          node: "pve-a",
          vmId: 6101,
          ipv4: { address: "10.60.0.11/24", gateway },
        },
        "lab-secondary": {
          resource: "lab-secondary-vm",
          node: "pve-b",
          vmId: 6179,
          ipv4: { address: "10.60.0.12/24", gateway },
        },
        "lab-build-1": {
          resource: "lab-build-1-vm",
          node: "pve-a",
          vmId: 6103,
          ipv4: { address: "10.60.0.31/24", gateway },
        },
        "lab-build-2": {
          resource: "lab-build-2-vm",
          node: "pve-b",
          vmId: 6122,
          ipv4: { address: "10.60.0.32/24", gateway },
        },
        "lab-build-3": {
          resource: "lab-build-3-vm",
          node: "pve-c",
          vmId: 6141,
          ipv4: { address: "10.60.0.33/24", gateway },
        },
        "lab-build-4": {
          resource: "lab-build-4-vm",
          node: "pve-a",
          vmId: 6108,
          ipv4: { address: "10.60.0.34/24", gateway },
        },
      });
      assert.equal(vms.length, 6);
    });

    it("parents each VM to its RunnerVm and each RunnerVm to the fleet; readiness waits for the VM", () => {
      const find = (type: string, name: string) => {
        const found = fixturePlan.resources.filter((r) => r.type === type && r.name === name);
        assert.equal(found.length, 1, `${type}::${name}`);
        return found[0];
      };
      assert.equal(find("runner-fleet:fleet:RunnerFleet", "runner-fleet").parent, null);
      const runners = [
        "lab-build-1",
        "lab-build-2",
        "lab-build-3",
        "lab-build-4",
        "lab-primary",
        "lab-secondary",
      ];
      for (const runner of runners) {
        assert.equal(find(RUNNER_VM, runner).parent, FLEET_REF);
        assert.equal(find(VM, `${runner}-vm`).parent, `${RUNNER_VM}::${runner}`);
        const ready = find("command:remote:Command", `${runner}-ready`);
        assert.equal(ready.parent, `${RUNNER_VM}::${runner}`);
        assert.ok(ready.dependsOn.includes(`${VM}::${runner}-vm`), `${runner}-ready: ${ready.dependsOn}`);
      }
    });

    it("calls no provider function but the GitHub ID lookups, and never a token function", () => {
      // The brief this test was written to asked for no calls at all; the GitHub setup resolves reviewer and
      // repository IDs through these lookups. A registration-token invoke would churn every preview.
      assert.deepEqual(fixturePlan.calls, [
        "github:index/getRepository:getRepository",
        "github:index/getTeam:getTeam",
        "github:index/getUser:getUser",
      ]);
      assert.ok(fixturePlan.calls.every((c) => !/token/i.test(c)));
    });

    it("keeps every provider credential secret and never prints the placeholder", () => {
      const credential = (type: string, key: string) => {
        const providers = fixturePlan.resources.filter((r) => r.type === type);
        assert.equal(providers.length, 1, type);
        return providers[0].inputs[key];
      };
      assert.equal(credential("pulumi:providers:proxmoxve", "apiToken"), "[secret]");
      assert.equal(credential("pulumi:providers:github", "token"), "[secret]");
      assert.equal(credential("pulumi:providers:grafana", "auth"), "[secret]");
      assertNoPlaceholder(first);
    });

    it("prints byte-identical output for the same input", () => {
      assert.equal(second.code, 0, explain(second));
      assert.ok(first.stdout.length > 0);
      assert.ok(first.stdout === second.stdout, "two runs of the same plan differ");
    });

    it("writes the whole plan into a pipe too (`npm run plan -- --json | jq`)", async () => {
      const command = [...PLAN, "--config", FIXTURE, "--json"].map((a) => `'${a}'`).join(" ");
      const piped = await run(["sh", "-c", `${command} | cat`]);
      assert.equal(piped.code, 0, explain(piped));
      assert.equal(piped.stdout.length, first.stdout.length, "stdout cut short when it is a pipe");
      assert.ok(piped.stdout === first.stdout);
    });
  });

  describe("invalid config", () => {
    const variants: [string, Edit, string[]][] = [
      [
        "a misspelt key",
        (c) => {
          const secondary = c["runner-fleet:runners"][1];
          secondary.memroyMb = secondary.memoryMb;
          delete secondary.memoryMb;
        },
        ["runner-fleet:runners[1].memroyMb: unknown key; did you mean memoryMb?"],
      ],
      [
        "a misspelt top-level key",
        (c) => {
          c["runner-fleet:pool"] = c["runner-fleet:pools"];
          delete c["runner-fleet:pools"];
        },
        ["runner-fleet:pool: unknown key; did you mean runner-fleet:pools?"],
      ],
      [
        "a VM ID used twice",
        (c) => (c["runner-fleet:runners"][1].vmId = 6101),
        ["runner-fleet:runners[1].vmId: 6101 is used by runner lab-primary"],
      ],
      [
        "the secondary on the primary's node",
        (c) => (c["runner-fleet:runners"][1].node = "pve-a"),
        [
          "runner-fleet:runners[1].node: secondary runner lab-secondary is on node pve-a with primary runner lab-primary; place them on different nodes",
        ],
      ],
      [
        "a label with a space",
        (c) => (c["runner-fleet:pools"][0].labels[1] = "has space"),
        [
          "runner-fleet:pools[0].labels[1]: is not a valid runner label (letters, digits, '.', '_' and '-' only, 1-256 characters)",
        ],
      ],
      [
        "seven reviewers",
        (c) => c["runner-fleet:environments"][0].reviewers.users.push("erin-qa"),
        ["runner-fleet:environments[0].reviewers: 7 reviewers; GitHub allows at most 6"],
      ],
      [
        "no SSH private key",
        (c) => delete c["runner-fleet:sshPrivateKey"],
        [
          "runner-fleet:sshPrivateKey: is required; set it with pulumi config set --secret runner-fleet:sshPrivateKey < ~/.ssh/runner-fleet",
        ],
      ],
    ];
    let runs: Run[];

    before(async () => {
      const files = variants.map(([, edit], i) => variant(`invalid-${i}`, edit));
      runs = await Promise.all(files.map((f) => plan("--config", f, "--json")));
    });

    variants.forEach(([title, , expected], i) => {
      it(`exits 2 and names the path: ${title}`, () => {
        const run = runs[i];
        assert.equal(run.code, 2, explain(run));
        assert.equal(run.stdout, "");
        assert.deepEqual(lines(run.stderr), expected);
      });
    });
  });

  it("--stack production prints a table with every production runner", async () => {
    const run = await plan("--stack", "production");
    assert.equal(run.code, 0, explain(run));
    assertNoPlaceholder(run);
    const doc = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.production.yaml"), "utf8")) as Doc;
    const singles = doc.config["runner-fleet:runners"] as { name: string }[];
    const pools = doc.config["runner-fleet:pools"] as { name: string; count: number }[];
    const names = [
      ...singles.map((r) => r.name),
      ...pools.flatMap((p) => Array.from({ length: p.count }, (_, i) => `${p.name}-${i + 1}`)),
    ];
    assert.deepEqual(names.sort(), [
      "prod-build-1",
      "prod-build-2",
      "prod-build-3",
      "prod-primary",
      "prod-secondary",
    ]);
    const out = lines(run.stdout);
    assert.match(out[0], /^runner-fleet \/ production: 5 runner\(s\), /);
    const header = out.findIndex((l) => l.startsWith("RUNNER "));
    assert.ok(header > 0, run.stdout);
    const rows = out.slice(header + 1, header + 1 + names.length).map((l) => l.split(/\s+/)[0]);
    assert.deepEqual(rows.sort(), names);
  });

  describe("--diff <file>: the pool grows by one, the exporter port and a runner's memory change", () => {
    let grown: string;
    let markdown: Run;
    let json: Run;
    let diff: Diff;

    before(async () => {
      grown = variant("grown", (c) => {
        const pool = c["runner-fleet:pools"][0];
        pool.count = 5;
        pool.ips.push("10.60.0.35/24");
        c["runner-fleet:monitoring"].exporter.port = 9102;
        c["runner-fleet:runners"][1].memoryMb = 24576;
      });
      [markdown, json] = await Promise.all([
        plan("--config", grown, "--diff", FIXTURE),
        plan("--config", grown, "--diff", FIXTURE, "--json"),
      ]);
      assert.equal(json.code, 0, explain(json));
      diff = JSON.parse(json.stdout) as Diff;
    });

    it("adds exactly the new member's resources, the same kinds as every other member's", () => {
      assert.equal(diff.stack, "three-node");
      assert.equal(diff.against, FIXTURE);
      const kinds = (runner: string, entries: { type: string; name: string }[]) =>
        entries
          .filter((r) => r.name === runner || r.name.startsWith(`${runner}-`))
          .map((r) => `${r.type}::${r.name.replace(runner, "<runner>")}`)
          .sort();
      const expected = kinds("lab-build-4", fixturePlan.resources);
      assert.ok(expected.includes(`${VM}::<runner>-vm`) && expected.includes(`${RUNNER_VM}::<runner>`));
      assert.deepEqual(kinds("lab-build-5", diff.added), expected);
      assert.equal(diff.added.length, expected.length);
      assert.ok(diff.added.every((r) => r.group === "lab-build-5"));
      assert.deepEqual(diff.removed, []);
    });

    it("changes exactly the changed settings and nothing else of the existing runners", () => {
      // The secondary's memory; every input of the fixture's plan that carries the exporter port, with the new
      // port; and the Prometheus targets list, which names every runner, gains the new member.
      const newTarget = {
        targets: ["10.60.0.35:9102"],
        labels: { runner: "lab-build-5", role: "primary", stack: "three-node", node: "pve-b" },
      };
      const bumped = (v: unknown) => (typeof v === "number" ? 9102 : String(v).split("9101").join("9102"));
      const expected = new Map<string, Change[]>([
        [`${VM}::lab-secondary-vm`, [{ path: "memory.dedicated", old: 16384, new: 24576 }]],
      ]);
      let targetLists = 0;
      for (const r of fixturePlan.resources) {
        for (const [p, v] of leaves(r.inputs)) {
          if (!String(v).includes("9101")) continue;
          const key = `${r.type}::${r.name}`;
          let next: unknown = bumped(v);
          if (fileSd(v)) {
            next = JSON.stringify([...(fileSd(next) as unknown[]), newTarget]);
            targetLists++;
          }
          expected.set(key, [...(expected.get(key) ?? []), { path: p, old: v, new: next }]);
        }
      }
      assert.equal(targetLists, 1, "one Prometheus targets list");
      assert.ok(expected.size > 2, "the exporter port reaches the exporters");
      // Compare target lists as data (sorted by runner), everything else as is.
      const view = (m: Map<string, Change[]>) =>
        [...m.entries()]
          .map(([k, cs]) => [k, cs.map((c) => ({ ...c, old: asData(c.old), new: asData(c.new) }))] as const)
          .sort(([a], [b]) => (a < b ? -1 : 1));
      const actual = new Map(diff.changed.map((r) => [`${r.type}::${r.name}`, r.changes ?? []]));
      assert.deepEqual(view(actual), view(expected));
    });

    it("reports the clone chains that move as reordering only", () => {
      // Clone chains follow VM ID order two at a time; lab-build-5 (6127) slots in between lab-build-2 (6122)
      // and lab-build-3 (6141).
      const vms = diff.reordered.filter((r) => r.type === VM);
      assert.deepEqual(
        vms.map((r) => [r.name, r.changes]),
        [
          [
            "lab-build-3-vm",
            [{ path: "dependsOn[0]", old: `${VM}::lab-build-4-vm`, new: `${VM}::lab-build-2-vm` }],
          ],
          [
            "lab-secondary-vm",
            [{ path: "dependsOn[0]", old: `${VM}::lab-build-2-vm`, new: `${VM}::lab-build-5-vm` }],
          ],
        ],
      );
      for (const r of diff.reordered)
        assert.ok(
          r.changes?.every((c) => c.path.startsWith("dependsOn")),
          r.name,
        );
    });

    it("renders the same difference as Markdown", () => {
      assert.equal(markdown.code, 0, explain(markdown));
      assertNoPlaceholder(markdown);
      assertNoPlaceholder(json);
      const md = markdown.stdout;
      assert.ok(
        md.includes(`**${diff.added.length} to add, ${diff.changed.length} to change, 0 to remove**`),
        md,
      );
      assert.ok(md.includes("#### runner `lab-build-5`"), md);
      assert.ok(md.includes(`- **add** \`lab-build-5-vm\` (${VM})`), md);
      assert.ok(md.includes(`- **add** \`lab-build-5\` (${RUNNER_VM})`), md);
      assert.ok(md.includes("#### runner `lab-secondary`"), md);
      assert.ok(
        md.includes(
          `- **change** \`lab-secondary-vm\` (${VM})\n  - \`memory.dedicated\`: \`16384\` → \`24576\``,
        ),
        md,
      );
      for (const r of diff.changed) {
        for (const c of r.changes ?? []) {
          assert.ok(md.includes(`  - \`${c.path}\`: ${showChange(c.old, c.new)}`), md);
        }
      }
      assert.ok(!md.includes("**remove**"), md);
    });
  });

  it("rejects an unknown flag with exit 1 and the usage", async () => {
    const run = await plan("--stack", "production", "--bogus");
    assert.equal(run.code, 1, explain(run));
    assert.equal(run.stdout, "");
    assert.deepEqual(lines(run.stderr), [
      "plan: unknown argument --bogus",
      "usage: npm run plan -- --stack <stack> [--config <file>] [--json] [--diff <git-ref or file>]",
    ]);
  });
});
