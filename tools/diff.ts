// The desired-state difference between two plans: resources added, removed, and changed with each changed
// input path and its old and new value, grouped by runner. Secrets compare and print as "[secret]".
import { cmp, Plan, PlannedResource } from "./engine";

export interface Change {
  path: string;
  old: unknown;
  new: unknown;
}

export interface ResourceChange {
  type: string;
  name: string;
  group: string;
  changes: Change[];
}

export interface ResourceRef {
  type: string;
  name: string;
  group: string;
}

export interface PlanDiff {
  project: string;
  stack: string;
  against: string;
  added: ResourceRef[];
  removed: ResourceRef[];
  changed: ResourceChange[];
  /** Resources whose dependencies alone changed: the engine orders differently but updates nothing. */
  reordered: ResourceChange[];
}

const VM_TYPE = "proxmoxve:index/vmLegacy:VmLegacy";

/** The runner a resource belongs to: the longest runner name that its name equals or starts with. */
function grouper(...plans: Plan[]): (name: string) => string {
  const runners = new Set<string>();
  for (const p of plans) {
    for (const r of p.resources)
      if (r.type === VM_TYPE && typeof r.inputs.name === "string") runners.add(r.inputs.name);
  }
  const names = [...runners].sort((a, b) => b.length - a.length);
  return (name) => names.find((r) => name === r || name.startsWith(`${r}-`)) ?? "fleet";
}

/** Flattens inputs to `a.b[0].c` -> leaf value; empty objects and arrays are leaves. */
export function flatten(
  value: unknown,
  prefix = "",
  out: Map<string, unknown> = new Map(),
): Map<string, unknown> {
  if (Array.isArray(value) && value.length > 0) {
    value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  } else if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, value);
  }
  return out;
}

function changesBetween(a: Record<string, unknown>, b: Record<string, unknown>): Change[] {
  const before = flatten(a);
  const after = flatten(b);
  return [...new Set([...before.keys(), ...after.keys()])]
    .sort()
    .filter((p) => JSON.stringify(before.get(p)) !== JSON.stringify(after.get(p)))
    .map((p) => ({ path: p.replace(/^inputs\./, ""), old: before.get(p), new: after.get(p) }));
}

export function diffPlans(before: Plan, after: Plan, against: string): PlanDiff {
  const key = (r: PlannedResource) => `${r.type}::${r.name}`;
  const group = grouper(before, after);
  const old = new Map(before.resources.map((r) => [key(r), r]));
  const now = new Map(after.resources.map((r) => [key(r), r]));
  const ref = (r: PlannedResource): ResourceRef => ({ type: r.type, name: r.name, group: group(r.name) });

  const added = after.resources.filter((r) => !old.has(key(r))).map(ref);
  const removed = before.resources.filter((r) => !now.has(key(r))).map(ref);
  const changed: ResourceChange[] = [];
  const reordered: ResourceChange[] = [];
  for (const r of after.resources) {
    const prev = old.get(key(r));
    if (!prev) continue;
    const view = (x: PlannedResource) => ({ inputs: x.inputs, parent: x.parent, protect: x.protect });
    const changes = changesBetween(view(prev), view(r));
    if (changes.length > 0) changed.push({ ...ref(r), changes });
    const ordering = changesBetween({ dependsOn: prev.dependsOn }, { dependsOn: r.dependsOn });
    if (ordering.length > 0) reordered.push({ ...ref(r), changes: ordering });
  }
  const order = (x: ResourceRef, y: ResourceRef) =>
    x.group === y.group
      ? x.name === y.name
        ? cmp(x.type, y.type)
        : cmp(x.name, y.name)
      : cmp(x.group, y.group);
  return {
    project: after.project,
    stack: after.stack,
    against,
    added: added.sort(order),
    removed: removed.sort(order),
    changed: changed.sort(order),
    reordered: reordered.sort(order),
  };
}

function show(v: unknown): string {
  return v === undefined ? "(absent)" : `\`${JSON.stringify(v)}\``;
}

const LONG = 100;
const CONTEXT = 24;

/** Old and new value; of two long strings only the part that differs, with a little context. */
export function showChange(a: unknown, b: unknown): string {
  if (typeof a !== "string" || typeof b !== "string" || (a.length <= LONG && b.length <= LONG)) {
    return `${show(a)} → ${show(b)}`;
  }
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let end = 0;
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end])
    end++;
  const from = Math.max(0, start - CONTEXT);
  const cut = (x: string) =>
    `${from > 0 ? "…" : ""}${x.slice(from, Math.min(x.length, x.length - end + CONTEXT))}${end > CONTEXT ? "…" : ""}`;
  return `${show(cut(a))} → ${show(cut(b))}`;
}

/** Markdown fit for a pull-request comment: one section per runner, one line per changed input. */
export function renderDiffMarkdown(d: PlanDiff): string {
  const lines = [
    `### ${d.project} \`${d.stack}\`: desired-state diff against \`${d.against}\``,
    "",
    `**${d.added.length} to add, ${d.changed.length} to change, ${d.removed.length} to remove**`,
  ];
  if (d.added.length + d.changed.length + d.removed.length === 0) {
    lines.push("", "No changes: the desired state is identical.");
    return lines.join("\n") + "\n";
  }
  const groups = [...new Set([...d.added, ...d.changed, ...d.removed].map((r) => r.group))].sort((a, b) =>
    a === "fleet" ? 1 : b === "fleet" ? -1 : cmp(a, b),
  );
  for (const g of groups) {
    lines.push("", `#### ${g === "fleet" ? "fleet-wide" : `runner \`${g}\``}`, "");
    for (const r of d.added.filter((x) => x.group === g)) lines.push(`- **add** \`${r.name}\` (${r.type})`);
    for (const r of d.removed.filter((x) => x.group === g))
      lines.push(`- **remove** \`${r.name}\` (${r.type})`);
    for (const r of d.changed.filter((x) => x.group === g)) {
      lines.push(`- **change** \`${r.name}\` (${r.type})`);
      for (const c of r.changes) lines.push(`  - \`${c.path}\`: ${showChange(c.old, c.new)}`);
    }
  }
  if (d.reordered.length > 0) {
    lines.push(
      "",
      `<details><summary>${d.reordered.length} resource(s) only reordered (dependencies changed; nothing is updated)</summary>`,
      "",
      ...d.reordered.map((r) => `- \`${r.name}\` (${r.type})`),
      "",
      "</details>",
    );
  }
  return lines.join("\n") + "\n";
}
