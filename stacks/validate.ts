// Validation of the raw `runner-fleet:*` config: the schema of each key, then the rules that span keys.
// Pure: plain data in, either the resolved fleet or every problem at once, each line starting with its path.
import { z } from "zod";
import {
  EnvironmentConfig,
  GithubConfig,
  keySchemas,
  MonitoringConfig,
  ProxmoxConfig,
  RunnerConfig,
  SingleRunnerConfig,
  PoolConfig,
  environmentSchema,
  inSubnet,
  parseCidr,
  poolSchema,
  runnerNamePattern,
  singleRunnerSchema,
} from "./schema";

export type Role = "primary" | "secondary";

/** One runner as the program builds it: singles and pool members alike, every value resolved. */
export interface RunnerSpec {
  name: string;
  role: Role;
  node: string;
  vmId: number;
  /** `dhcp` or an address with prefix, e.g. 10.0.10.21/24. */
  ip: string;
  cores: number;
  memoryMb: number;
  diskGb: number;
  /** Labels from config, without the ones the program adds (stack, role, extraLabels). */
  labels: string[];
  /** The pool this runner belongs to, with its 1-based member index. */
  pool?: { name: string; index: number };
  /** Where this runner comes from in config, for error messages: `runner-fleet:pools[0]`. */
  source: string;
}

export interface FleetSpec {
  stack: string;
  github: GithubConfig;
  runner: RunnerConfig;
  proxmox: ProxmoxConfig;
  runners: RunnerSpec[];
  environments: EnvironmentConfig[];
  monitoring?: MonitoringConfig;
}

export type ValidationResult = { ok: true; fleet: FleetSpec } | { ok: false; errors: string[] };

const NS = "runner-fleet";
type Key = keyof typeof keySchemas;
/** Keys of the namespace that are not validated here: secrets, read by the loader as Pulumi secrets. */
/** The namespace's secret keys: read by the loader as secrets, never validated as data. */
export const SECRET_KEYS = ["sshPrivateKey", "alertWebhookUrl"];

/** A list element that parsed, with its index in config (for paths). */
interface Indexed<T> {
  index: number;
  value: T;
}

/** `["runners", 1, "vmId"]` -> `runner-fleet:runners[1].vmId`. */
export function configPath(key: string, path: ReadonlyArray<PropertyKey> = []): string {
  let out = `${NS}:${key}`;
  for (const p of path) out += typeof p === "number" ? `[${p}]` : `.${String(p)}`;
  return out;
}

/** Validates the raw values of the `runner-fleet:*` keys (absent keys are `undefined`). */
export function validateFleetConfig(raw: Partial<Record<string, unknown>>, stack: string): ValidationResult {
  const errors: string[] = [];
  const parsed: Partial<Record<Key, unknown>> = {};

  const known = [...Object.keys(keySchemas), ...SECRET_KEYS];
  for (const key of Object.keys(raw).sort()) {
    if (raw[key] === undefined || known.includes(key)) continue;
    const hint = closest(key, known);
    errors.push(`${configPath(key)}: unknown key${hint ? `; did you mean ${configPath(hint)}?` : ""}`);
  }

  for (const key of Object.keys(keySchemas) as Key[]) {
    const { schema, required } = keySchemas[key];
    const value = raw[key];
    if (value === undefined) {
      if (required) errors.push(`${configPath(key)}: is required`);
      continue;
    }
    const result = (schema as z.ZodType).safeParse(value, { error: issueMessage });
    if (result.success) parsed[key] = result.data;
    else errors.push(...result.error.issues.flatMap((i) => formatIssue(key, i)));
  }

  const github = parsed.github as GithubConfig | undefined;
  const runner = parsed.runner as RunnerConfig | undefined;
  const proxmox = parsed.proxmox as ProxmoxConfig | undefined;
  // The runners and pools that parsed, even when others did not: the fleet-wide rules below then still report
  // every problem among them at once (leaving out an entry can hide a clash, never invent one).
  const singles = wellFormed(raw.runners, singleRunnerSchema);
  const pools = wellFormed(raw.pools, poolSchema);
  const environments = wellFormed(raw.environments, environmentSchema);
  const monitoring = parsed.monitoring as MonitoringConfig | undefined;

  if (github) checkGithub(github, errors);
  if (runner) checkLabels(configPath("runner", ["extraLabels"]), runner.extraLabels, errors);
  for (const { index, value } of singles)
    checkLabels(configPath("runners", [index, "labels"]), value.labels, errors);
  for (const { index, value } of pools)
    checkLabels(configPath("pools", [index, "labels"]), value.labels, errors);
  checkEnvironments(environments, errors);
  if (monitoring) checkMonitoring(monitoring, errors);
  if (proxmox) checkProxmox(proxmox, errors);

  // The fleet-wide rules need the node list, VM ID range and gateway.
  let runners: RunnerSpec[] = [];
  if (proxmox) runners = resolveRunners(proxmox, singles, pools, errors);

  if (errors.length > 0 || !github || !runner || !proxmox) return { ok: false, errors };
  const fleet: FleetSpec = {
    stack,
    github,
    runner,
    proxmox,
    runners,
    environments: environments.map((e) => e.value),
    monitoring,
  };
  return { ok: true, fleet };
}

/** The elements of a list that parse on their own, with their indexes. */
function wellFormed<T>(value: unknown, element: z.ZodType<T>): Indexed<T>[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((v, index) => {
    const r = element.safeParse(v);
    return r.success ? [{ index, value: r.data }] : [];
  });
}

// ---------------------------------------------------------------------------------------------------------
// Schema issues

function issueMessage(iss: z.core.$ZodRawIssue): string | undefined {
  switch (iss.code) {
    case "invalid_type":
      return iss.input === undefined
        ? "is required"
        : `must be ${article(iss.expected)}, got ${describe(iss.input)}`;
    case "too_small":
      if (iss.origin === "array") return `must have at least ${iss.minimum} item(s)`;
      if (iss.origin === "string") return "must not be empty";
      return `must be ${iss.inclusive ? ">=" : ">"} ${iss.minimum}`;
    case "too_big":
      if (iss.origin === "array") return `must have at most ${iss.maximum} item(s)`;
      return `must be ${iss.inclusive ? "<=" : "<"} ${iss.maximum}`;
    case "invalid_union":
      return "has an unexpected shape";
    default:
      return undefined;
  }
}

function article(expected: string): string {
  // zod names a whole number `int`: say "an integer", not "an int".
  const type = expected === "int" ? "integer" : expected;
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "an array";
  if (v === null) return "null";
  return typeof v === "object" ? "an object" : `${typeof v} ${JSON.stringify(v)}`;
}

function formatIssue(key: string, issue: z.core.$ZodIssue): string[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((k) => {
      const hint = closestKnownKey(k);
      return `${configPath(key, [...issue.path, k])}: unknown key${hint ? `; did you mean ${hint}?` : ""}`;
    });
  }
  return [`${configPath(key, issue.path)}: ${issue.message}`];
}

let knownKeys: string[] | undefined;
/** A known field name within edit distance 2 of a misspelt one (`memroyMb` -> `memoryMb`). */
function closestKnownKey(k: string): string | undefined {
  knownKeys ??= [...new Set(Object.values(keySchemas).flatMap(({ schema }) => fieldNames(schema)))].sort();
  return closest(k, knownKeys);
}

function closest(k: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const d = editDistance(k.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function fieldNames(schema: unknown): string[] {
  const def = (schema as { def?: Record<string, unknown> }).def;
  if (!def) return [];
  switch (def.type) {
    case "object": {
      const shape = def.shape as Record<string, unknown>;
      return [...Object.keys(shape), ...Object.values(shape).flatMap(fieldNames)];
    }
    case "array":
      return fieldNames(def.element);
    case "optional":
    case "default":
    case "pipe":
      return fieldNames(def.innerType ?? def.in);
    case "union":
      return (def.options as unknown[]).flatMap(fieldNames);
    default:
      return [];
  }
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (j >= 2 && i >= 2 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        row[j] = Math.min(row[j], diagonal);
      diagonal = above;
    }
  }
  return row[b.length];
}

// ---------------------------------------------------------------------------------------------------------
// Rules that span fields

function checkGithub(github: GithubConfig, errors: string[]): void {
  if (github.scope === "repository") {
    for (const field of ["runnerGroup", "runnerGroupRepositories", "runnerGroupWorkflows"] as const) {
      if (github[field] !== undefined) {
        errors.push(`${configPath("github", [field])}: runner groups exist only for scope organization`);
      }
    }
  }
}

/** GitHub allows at most 6 required reviewers per environment. */
export const MAX_REVIEWERS = 6;

function checkEnvironments(environments: Indexed<EnvironmentConfig>[], errors: string[]): void {
  const seen = new Map<string, number>();
  environments.forEach(({ index: i, value: env }) => {
    const prev = seen.get(env.name.toLowerCase());
    if (prev !== undefined) {
      errors.push(
        `${configPath("environments", [i, "name"])}: ${env.name} is already defined at environments[${prev}]`,
      );
    } else seen.set(env.name.toLowerCase(), i);
    const count = env.reviewers.users.length + env.reviewers.teams.length;
    if (count > MAX_REVIEWERS) {
      errors.push(
        `${configPath("environments", [i, "reviewers"])}: ${count} reviewers; GitHub allows at most ${MAX_REVIEWERS}`,
      );
    }
  });
}

/** GitHub compares runner labels case-insensitively: a label listed twice is a typo or a merge leftover. */
function checkLabels(path: string, labels: string[], errors: string[]): void {
  const seen = new Set<string>();
  labels.forEach((l, j) => {
    if (seen.has(l.toLowerCase())) errors.push(`${path}[${j}]: label ${l} is listed twice`);
    seen.add(l.toLowerCase());
  });
}

function checkMonitoring(monitoring: MonitoringConfig, errors: string[]): void {
  const contact = monitoring.grafana.contactPoint;
  if (!contact) return;
  const at = configPath("monitoring", ["grafana", "contactPoint", "addresses"]);
  if (contact.type === "email" && (contact.addresses ?? []).length === 0) {
    errors.push(`${at}: an email contact point needs at least one address`);
  } else if (contact.type !== "email" && contact.addresses !== undefined) {
    errors.push(
      `${at}: addresses are only for an email contact point; a ${contact.type} contact point sends to runner-fleet:alertWebhookUrl`,
    );
  }
}

function checkProxmox(proxmox: ProxmoxConfig, errors: string[]): void {
  const names = new Set<string>();
  proxmox.nodes.forEach((n, i) => {
    if (names.has(n.name))
      errors.push(`${configPath("proxmox", ["nodes", i, "name"])}: node ${n.name} is listed twice`);
    names.add(n.name);
  });
  if (!names.has(proxmox.template.node)) {
    errors.push(
      `${configPath("proxmox", ["template", "node"])}: unknown node ${proxmox.template.node} (known: ${[...names].join(", ")})`,
    );
  }
  const { start, end } = proxmox.vmIdRange;
  if (start < 100)
    errors.push(`${configPath("proxmox", ["vmIdRange", "start"])}: must be >= 100 (Proxmox VM IDs)`);
  if (end < start)
    errors.push(`${configPath("proxmox", ["vmIdRange", "end"])}: ${end} is below start ${start}`);
  if (end > 999_999_999) errors.push(`${configPath("proxmox", ["vmIdRange", "end"])}: must be <= 999999999`);
}

interface Draft extends Omit<RunnerSpec, "vmId"> {
  vmId?: number;
  /** Path of the explicit VM ID or IP in config, for messages. */
  vmIdPath: string;
  ipPath: string;
  nodePath: string;
}

function resolveRunners(
  proxmox: ProxmoxConfig,
  singles: Indexed<SingleRunnerConfig>[],
  pools: Indexed<PoolConfig>[],
  errors: string[],
): RunnerSpec[] {
  const drafts: Draft[] = [];
  singles.forEach(({ index: i, value: r }) => {
    const at = (field: string) => configPath("runners", [i, field]);
    drafts.push({
      name: r.name,
      role: r.role,
      node: r.node,
      vmId: r.vmId,
      ip: r.ip,
      cores: r.cores,
      memoryMb: r.memoryMb,
      diskGb: r.diskGb,
      labels: r.labels,
      source: configPath("runners", [i]),
      vmIdPath: at("vmId"),
      ipPath: at("ip"),
      nodePath: at("node"),
    });
  });
  pools.forEach(({ index: i, value: p }) => {
    const longest = `${p.name}-${p.count}`;
    if (p.count > 0 && !runnerNamePattern.test(longest)) {
      errors.push(
        `${configPath("pools", [i, "name"])}: member name ${longest} is longer than 63 characters; shorten the pool name`,
      );
    }
    if (p.ips && p.ips.length < p.count) {
      errors.push(
        `${configPath("pools", [i, "ips"])}: ${p.ips.length} address(es) for ${p.count} members; give one per member`,
      );
    }
    for (let m = 1; m <= p.count; m++) {
      const nodeIndex = (m - 1) % p.nodes.length;
      drafts.push({
        name: `${p.name}-${m}`,
        role: p.role,
        node: p.nodes[nodeIndex],
        vmId: p.vmIdStart === undefined ? undefined : p.vmIdStart + m - 1,
        ip: p.ips?.[m - 1] ?? "dhcp",
        cores: p.cores,
        memoryMb: p.memoryMb,
        diskGb: p.diskGb,
        labels: p.labels,
        pool: { name: p.name, index: m },
        source: configPath("pools", [i]),
        vmIdPath: configPath("pools", [i, "vmIdStart"]),
        ipPath: configPath("pools", [i, "ips", m - 1]),
        nodePath: configPath("pools", [i, "nodes", nodeIndex]),
      });
    }
  });

  checkNames(drafts, errors);
  checkNodes(proxmox, drafts, pools, errors);
  checkAddresses(proxmox, drafts, errors);
  checkPlacement(drafts, errors);
  const vmIds = allocateVmIds(proxmox, drafts, errors);
  return drafts.map(({ vmIdPath: _v, ipPath: _i, nodePath: _n, ...d }, i) => ({ ...d, vmId: vmIds[i] }));
}

function checkNames(drafts: Draft[], errors: string[]): void {
  const seen = new Map<string, Draft>();
  for (const d of drafts) {
    const prev = seen.get(d.name);
    if (prev) {
      const where = d.pool ? `${d.source}.name (member ${d.name})` : `${d.source}.name`;
      errors.push(`${where}: runner name ${d.name} is already used by ${prev.source}`);
    } else seen.set(d.name, d);
  }
}

function checkNodes(
  proxmox: ProxmoxConfig,
  drafts: Draft[],
  pools: Indexed<PoolConfig>[],
  errors: string[],
): void {
  const nodes = new Map(proxmox.nodes.map((n) => [n.name, n]));
  const unknown = (path: string, node: string) =>
    errors.push(`${path}: unknown node ${node} (known: ${[...nodes.keys()].join(", ")})`);
  const used = new Map<string, { cores: number; memoryMb: number }>();
  for (const d of drafts) {
    if (!nodes.has(d.node)) {
      if (!d.pool) unknown(d.nodePath, d.node);
      continue;
    }
    const u = used.get(d.node) ?? { cores: 0, memoryMb: 0 };
    used.set(d.node, { cores: u.cores + d.cores, memoryMb: u.memoryMb + d.memoryMb });
  }
  // Every node a pool lists, including those no member uses yet: a typo must not wait for the pool to grow.
  for (const { index: i, value: p } of pools) {
    p.nodes.forEach((node, j) => {
      if (!nodes.has(node)) unknown(configPath("pools", [i, "nodes", j]), node);
    });
  }
  proxmox.nodes.forEach((n, i) => {
    const u = used.get(n.name);
    if (!u) return;
    if (n.cores !== undefined && u.cores > n.cores) {
      errors.push(
        `${configPath("proxmox", ["nodes", i, "cores"])}: runners on ${n.name} need ${u.cores} cores; capacity is ${n.cores}`,
      );
    }
    if (n.memoryMb !== undefined && u.memoryMb > n.memoryMb) {
      errors.push(
        `${configPath("proxmox", ["nodes", i, "memoryMb"])}: runners on ${n.name} need ${u.memoryMb} MB; capacity is ${n.memoryMb}`,
      );
    }
  });
}

function checkAddresses(proxmox: ProxmoxConfig, drafts: Draft[], errors: string[]): void {
  const seen = new Map<string, Draft>();
  for (const d of drafts) {
    if (d.ip === "dhcp") continue;
    const net = parseCidr(d.ip);
    if (!net) continue; // reported by the schema
    const size = 2 ** (32 - net.prefix);
    const base = Math.floor(net.value / size) * size;
    if (size >= 4 && net.value === base) {
      errors.push(`${d.ipPath}: ${net.address} is the network address of ${numberToIp(base)}/${net.prefix}`);
    } else if (size >= 4 && net.value === base + size - 1) {
      errors.push(
        `${d.ipPath}: ${net.address} is the broadcast address of ${numberToIp(base)}/${net.prefix}`,
      );
    }
    const prev = seen.get(net.address);
    if (prev) errors.push(`${d.ipPath}: ${net.address} is already used by runner ${prev.name}`);
    else seen.set(net.address, d);
    if (proxmox.gateway === undefined) {
      errors.push(`${d.ipPath}: a static address needs runner-fleet:proxmox.gateway`);
    } else if (!inSubnet(proxmox.gateway, net)) {
      errors.push(`${d.ipPath}: gateway ${proxmox.gateway} is outside ${d.ip}`);
    } else if (proxmox.gateway === net.address) {
      errors.push(`${d.ipPath}: ${net.address} is the gateway's address`);
    }
  }
}

function numberToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

/** A single primary and a single secondary on one node would fail together: a config error. */
function checkPlacement(drafts: Draft[], errors: string[]): void {
  const primaries = drafts.filter((d) => !d.pool && d.role === "primary");
  for (const s of drafts.filter((d) => !d.pool && d.role === "secondary")) {
    const clash = primaries.find((p) => p.node === s.node);
    if (clash) {
      errors.push(
        `${s.nodePath}: secondary runner ${s.name} is on node ${s.node} with primary runner ${clash.name}; place them on different nodes`,
      );
    }
  }
}

/** 32-bit FNV-1a: a stable hash for placing a runner in the VM ID range. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Compares names so that `pool-2` sorts before `pool-10`. */
export function naturalCompare(a: string, b: string): number {
  const re = /(\d+)|(\D+)/g;
  const pa = a.match(re) ?? [];
  const pb = b.match(re) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const [x, y] = [pa[i], pb[i]];
    if (x === y) continue;
    const nx = Number(x);
    const ny = Number(y);
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) return nx - ny;
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

/**
 * Explicit VM IDs are checked; the others are allocated from vmIdRange: each runner, in natural name order,
 * takes the first free ID at or after `start + hash(name) mod size`. A runner's ID depends only on its name
 * and on the IDs taken before it, so adding a runner or growing a pool does not move the existing ones
 * unless the newcomer collides with a later runner's slot; give `vmId` explicitly to rule that out.
 */
function allocateVmIds(proxmox: ProxmoxConfig, drafts: Draft[], errors: string[]): number[] {
  const { start, end } = proxmox.vmIdRange;
  const rangeOk = start >= 100 && end >= start;
  const taken = new Map<number, string>([[proxmox.template.vmId, "the template"]]);
  const ids: number[] = new Array(drafts.length).fill(0);
  drafts.forEach((d, i) => {
    if (d.vmId === undefined) return;
    const where = d.pool ? `${d.vmIdPath} (member ${d.name})` : d.vmIdPath;
    const owner = taken.get(d.vmId);
    if (owner !== undefined) {
      errors.push(`${where}: ${d.vmId} is used by ${owner === "the template" ? owner : `runner ${owner}`}`);
    } else taken.set(d.vmId, d.name);
    if (rangeOk && (d.vmId < start || d.vmId > end)) {
      errors.push(`${where}: ${d.vmId} is outside vmIdRange ${start}-${end}`);
    }
    ids[i] = d.vmId;
  });
  if (!rangeOk) return ids;
  const size = end - start + 1;
  const auto = drafts.map((d, i) => ({ d, i })).filter(({ d }) => d.vmId === undefined);
  const free = size - [...taken.keys()].filter((id) => id >= start && id <= end).length;
  if (auto.length > free) {
    const n = Math.max(free, 0);
    errors.push(
      `${configPath("proxmox", ["vmIdRange"])}: ${auto.length} runner${auto.length === 1 ? " needs" : "s need"} an ID but only ${n} ${n === 1 ? "is" : "are"} free in ${start}-${end}`,
    );
    return ids;
  }
  auto.sort((a, b) => naturalCompare(a.d.name, b.d.name));
  for (const { d, i } of auto) {
    let offset = fnv1a(d.name) % size;
    while (taken.has(start + offset)) offset = (offset + 1) % size;
    taken.set(start + offset, d.name);
    ids[i] = start + offset;
  }
  return ids;
}
