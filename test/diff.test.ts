// The desired-state diff on hand-made plans: grouping, change paths, reordering, long strings.
import { strict as assert } from "assert";
import { diffPlans, renderDiffMarkdown, showChange } from "../tools/diff";
import { Plan, PlannedResource } from "../tools/engine";

const VM = "proxmoxve:index/vmLegacy:VmLegacy";
const CMD = "command:remote:Command";

function res(
  type: string,
  name: string,
  inputs: Record<string, unknown>,
  dependsOn: string[] = [],
): PlannedResource {
  return { type, name, parent: null, dependsOn, protect: false, inputs };
}

function plan(resources: PlannedResource[]): Plan {
  return { project: "runner-fleet", stack: "s", resources, calls: [] };
}

describe("diffPlans", () => {
  const before = plan([
    res(VM, "r1-vm", { name: "r1", memory: { dedicated: 4096 } }),
    res(CMD, "r1-install", { triggers: ["RUNNER_VERSION=2.321.0"] }),
    res(VM, "r2-vm", { name: "r2" }),
    res(CMD, "fleet-wide", { x: 1 }, ["a::b"]),
  ]);
  const after = plan([
    res(VM, "r1-vm", { name: "r1", memory: { dedicated: 8192 } }),
    res(CMD, "r1-install", { triggers: ["RUNNER_VERSION=2.322.0"] }),
    res(VM, "r3-vm", { name: "r3" }),
    res(CMD, "fleet-wide", { x: 1 }, ["a::c"]),
  ]);
  const d = diffPlans(before, after, "main");

  it("names added, removed and changed resources with their runner and input paths", () => {
    assert.deepEqual(d.added, [{ type: VM, name: "r3-vm", group: "r3" }]);
    assert.deepEqual(d.removed, [{ type: VM, name: "r2-vm", group: "r2" }]);
    assert.deepEqual(d.changed, [
      {
        type: CMD,
        name: "r1-install",
        group: "r1",
        changes: [{ path: "triggers[0]", old: "RUNNER_VERSION=2.321.0", new: "RUNNER_VERSION=2.322.0" }],
      },
      { type: VM, name: "r1-vm", group: "r1", changes: [{ path: "memory.dedicated", old: 4096, new: 8192 }] },
    ]);
  });

  it("reports a change of dependencies alone as reordering, not as a change", () => {
    assert.deepEqual(d.reordered, [
      {
        type: CMD,
        name: "fleet-wide",
        group: "fleet",
        changes: [{ path: "dependsOn[0]", old: "a::b", new: "a::c" }],
      },
    ]);
  });

  it("renders one Markdown section per runner, fleet-wide last", () => {
    const md = renderDiffMarkdown(d);
    assert.match(md, /\*\*1 to add, 2 to change, 1 to remove\*\*/);
    assert.ok(md.indexOf("#### runner `r1`") < md.indexOf("#### runner `r3`"));
    assert.match(md, /- `memory.dedicated`: `4096` → `8192`/);
    assert.match(md, /1 resource\(s\) only reordered/);
  });

  it("an identical plan has no changes", () => {
    const same = diffPlans(before, before, "HEAD");
    assert.deepEqual([same.added, same.removed, same.changed, same.reordered], [[], [], [], []]);
    assert.match(renderDiffMarkdown(same), /No changes: the desired state is identical\./);
  });
});

describe("showChange", () => {
  it("shows short values whole", () => {
    assert.equal(showChange(1, 2), "`1` → `2`");
    assert.equal(showChange(undefined, "x"), '(absent) → `"x"`');
  });

  it("shows only the differing part of long strings, with context", () => {
    const a = `${"a".repeat(100)} PORT=9100 ${"b".repeat(100)}`;
    const b = `${"a".repeat(100)} PORT=9200 ${"b".repeat(100)}`;
    assert.equal(
      showChange(a, b),
      `\`"…${"a".repeat(17)} PORT=9100 ${"b".repeat(21)}…"\` → \`"…${"a".repeat(17)} PORT=9200 ${"b".repeat(21)}…"\``,
    );
  });
});
