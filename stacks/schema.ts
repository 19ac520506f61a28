// The shape of each `runner-fleet:*` config key, with its defaults. Every object is strict: an unknown key
// (a typo such as `memroyMb`) is an error, never silently ignored. Cross-field rules live in validate.ts.
import { z } from "zod";

/** Runner names become VM names and hostnames: lowercase DNS labels. */
export const runnerNamePattern = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Labels GitHub accepts for self-hosted runners: no commas or spaces, at most 256 characters. */
export const labelPattern = /^[A-Za-z0-9._-]{1,256}$/;
export const ipv4Pattern = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

const positiveInt = z.number().int().positive();
const ipv4 = z.string().regex(ipv4Pattern, { error: "must be an IPv4 address such as 10.0.0.1" });
const cidr = z.string().refine((s) => parseCidr(s) !== undefined, {
  error: "must be an IPv4 address with prefix, e.g. 10.0.10.21/24",
});
const label = z.string().regex(labelPattern, {
  error: "is not a valid runner label (letters, digits, '.', '_' and '-' only, 1-256 characters)",
});
const runnerName = z.string().regex(runnerNamePattern, {
  error: "must be a lowercase DNS label (a-z, 0-9, '-', at most 63 characters)",
});
const role = z.enum(["primary", "secondary"], { error: "must be primary or secondary" });
const linuxUser = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: "must be a Linux user name" });

export const githubSchema = z.strictObject({
  scope: z.enum(["repository", "organization"], { error: "must be repository or organization" }),
  /** Repository name (without owner). Required: environments live on it, and repository-scope runners join it. */
  repository: z.string().min(1),
  /** Organization scope: the runner group the runners join (created by this program). */
  runnerGroup: z.string().min(1).optional(),
  /** Organization scope: repositories allowed to use the runner group (default: `repository` only). */
  runnerGroupRepositories: z.array(z.string().min(1)).optional(),
  /** Organization scope: workflows allowed to use the runner group, e.g. `org/repo/.github/workflows/deploy.yml@refs/heads/main`. */
  runnerGroupWorkflows: z.array(z.string().min(1)).optional(),
});

export const runnerSchema = z.strictObject({
  version: z.string().regex(/^\d+\.\d+\.\d+$/, { error: "must be a pinned version x.y.z, e.g. 2.321.0" }),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, { error: "must be 64 hex digits (SHA-256 of the linux-x64 tarball)" }),
  downloadUrl: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).optional(),
  user: linuxUser
    .refine((u) => u !== "root", { error: "must not be root: the runner runs as a non-root user" })
    .default("runner"),
  ephemeral: z.boolean().default(false),
  extraLabels: z.array(label).default([]),
  /** How many runners re-register at once when the version, labels or install script change. */
  rolloutBatchSize: positiveInt.default(1),
});

const nodeSchema = z.strictObject({
  name: z.string().min(1),
  cores: positiveInt.optional(),
  memoryMb: positiveInt.optional(),
});

const dnsSchema = z.union([
  z.array(ipv4),
  z.strictObject({ servers: z.array(ipv4).min(1), domain: z.string().min(1).optional() }),
]);

export const proxmoxSchema = z.strictObject({
  nodes: z.array(nodeSchema).min(1),
  template: z.strictObject({ vmId: positiveInt, node: z.string().min(1) }),
  datastore: z.string().min(1),
  bridge: z.string().min(1),
  vlan: z.number().int().min(1).max(4094).optional(),
  vmIdRange: z.strictObject({ start: positiveInt, end: positiveInt }),
  gateway: ipv4.optional(),
  dns: dnsSchema.optional(),
  sshPublicKeys: z
    .array(z.string().regex(/^(ssh|ecdsa)-[a-z0-9-]+ \S+/, { error: "must be an OpenSSH public key" }))
    .min(1),
  /** The cloud-init user remote commands log in as (sudo without password). */
  sshUser: linuxUser.default("fleet"),
  /** How many clones of the template run at once; Proxmox times out locking the template beyond ~2. */
  cloneConcurrency: positiveInt.max(16).default(2),
});

const sizes = {
  cores: positiveInt.default(2),
  memoryMb: positiveInt.default(4096),
  diskGb: positiveInt.default(40),
};

export const singleRunnerSchema = z.strictObject({
  name: runnerName,
  role,
  node: z.string().min(1),
  vmId: positiveInt.optional(),
  ip: z
    .string()
    .refine((s) => s === "dhcp" || parseCidr(s) !== undefined, {
      error: "must be dhcp or an IPv4 address with prefix, e.g. 10.0.10.21/24",
    })
    .default("dhcp"),
  ...sizes,
  labels: z.array(label).default([]),
});

export const poolSchema = z.strictObject({
  name: runnerName,
  count: z.number().int().min(0, { error: "must be >= 0" }),
  role,
  nodes: z.array(z.string().min(1)).min(1),
  ...sizes,
  labels: z.array(label).default([]),
  ips: z.array(cidr).optional(),
  /** First VM ID of the pool: member i gets vmIdStart + i - 1. Without it, IDs come from vmIdRange. */
  vmIdStart: positiveInt.optional(),
});

export const environmentSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._-]{1,255}$/, { error: "must be a GitHub environment name" }),
  reviewers: z
    .strictObject({
      users: z.array(z.string().min(1)).default([]),
      teams: z.array(z.string().min(1)).default([]),
    })
    .default({ users: [], teams: [] }),
  waitTimerMinutes: z.number().int().min(0).max(43200).default(0),
  preventSelfReview: z.boolean().default(false),
  /** Admins may bypass protection rules only when this is true; production should leave it false. */
  canAdminsBypass: z.boolean().default(false),
  branches: z.array(z.string().min(1)).default([]),
  variables: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: "must be a variable name" }), z.string())
    .default({}),
});

const contactPointSchema = z.strictObject({
  name: z.string().min(1).default("runner-fleet"),
  /** email: addresses below; webhook and slack: the URL comes from the secret `runner-fleet:alertWebhookUrl`. */
  type: z.enum(["email", "webhook", "slack"], { error: "must be email, webhook or slack" }),
  /** email only: at least one address. */
  addresses: z.array(z.email({ error: "must be an email address" })).optional(),
});

export const monitoringSchema = z.strictObject({
  grafana: z.strictObject({
    folder: z.string().min(1).optional(),
    prometheusDatasourceUid: z.string().min(1),
    contactPoint: contactPointSchema.optional(),
  }),
  prometheus: z
    .strictObject({
      /** Host reachable over SSH where the file_sd targets file is written; omitted: only exported. */
      host: z.string().min(1).optional(),
      /** Source address allowed to scrape the exporter (defaults to `host` when it is an address). */
      scrapeFrom: ipv4.optional(),
      fileSdPath: z.string().startsWith("/", { error: "must be an absolute path" }).optional(),
    })
    .default({}),
  exporter: z
    .strictObject({ port: z.number().int().min(1024).max(65535).default(9100) })
    .default({ port: 9100 }),
  alerts: z
    .strictObject({
      primaryOfflineMinutes: positiveInt.default(5),
      secondaryOfflineMinutes: positiveInt.default(10),
      saturatedMinutes: positiveInt.default(15),
      workDiskFreeGb: positiveInt.default(10),
      failedJobsPerHour: positiveInt.default(3),
    })
    .default({
      primaryOfflineMinutes: 5,
      secondaryOfflineMinutes: 10,
      saturatedMinutes: 15,
      workDiskFreeGb: 10,
      failedJobsPerHour: 3,
    }),
});

/** Each program key, its schema and whether it must be present. */
export const keySchemas = {
  github: { schema: githubSchema, required: true },
  runner: { schema: runnerSchema, required: true },
  proxmox: { schema: proxmoxSchema, required: true },
  runners: { schema: z.array(singleRunnerSchema), required: false },
  pools: { schema: z.array(poolSchema), required: false },
  environments: { schema: z.array(environmentSchema), required: false },
  monitoring: { schema: monitoringSchema, required: false },
} as const;

export type GithubConfig = z.infer<typeof githubSchema>;
export type RunnerConfig = z.infer<typeof runnerSchema>;
export type ProxmoxConfig = z.infer<typeof proxmoxSchema>;
export type SingleRunnerConfig = z.infer<typeof singleRunnerSchema>;
export type PoolConfig = z.infer<typeof poolSchema>;
export type EnvironmentConfig = z.infer<typeof environmentSchema>;
export type MonitoringConfig = z.infer<typeof monitoringSchema>;

/** The address allowed to scrape exporters: `scrapeFrom`, else the Prometheus host when it is an address. */
export function scrapeSource(monitoring: MonitoringConfig | undefined): string | undefined {
  const p = monitoring?.prometheus;
  if (!p) return undefined;
  if (p.scrapeFrom) return p.scrapeFrom;
  return p.host !== undefined && ipv4Pattern.test(p.host) ? p.host : undefined;
}

export interface Cidr {
  address: string;
  prefix: number;
  /** The address as a 32-bit unsigned number. */
  value: number;
}

export function ipToNumber(ip: string): number {
  return ip.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

export function parseCidr(s: string): Cidr | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  if (!m || !ipv4Pattern.test(m[1])) return undefined;
  const prefix = Number(m[2]);
  if (prefix < 1 || prefix > 32) return undefined;
  return { address: m[1], prefix, value: ipToNumber(m[1]) };
}

export function inSubnet(ip: string, net: Cidr): boolean {
  const size = 2 ** (32 - net.prefix);
  const base = Math.floor(net.value / size) * size;
  const v = ipToNumber(ip);
  return v >= base && v < base + size;
}
