// npm run plan -- --stack <stack> [--config <file>] [--json] [--diff <git-ref or file>]
// Evaluates the program for a stack file in Pulumi's mock engine: no credentials, no network, nothing
// decrypted. Exit 0 on success, 2 on invalid config (errors on stderr), 1 otherwise.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { diffPlans, renderDiffMarkdown } from "./diff";
import { installEngine, Plan, PlannedResource } from "./engine";
import { readProjectName, readStackConfig, StackFileError } from "./stackFile";
import { table } from "./table";

const ROOT = path.resolve(__dirname, "..");

interface Options {
  stack: string;
  config?: string;
  json: boolean;
  diff?: string;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  const opts: Partial<Options> = { json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith("--")) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === "--stack") opts.stack = value();
    else if (a === "--config") opts.config = value();
    else if (a === "--diff") opts.diff = value();
    else if (a === "--json") opts.json = true;
    else throw new UsageError(`unknown argument ${a}`);
  }
  if (!opts.stack && opts.config) opts.stack = path.basename(opts.config).replace(/^Pulumi\.|\.ya?ml$/g, "");
  if (!opts.stack) throw new UsageError("--stack <name> is required");
  return opts as Options;
}

/** Evaluates index.ts for one stack file in this process. */
async function evaluate(stack: string, configFile: string): Promise<Plan> {
  const project = readProjectName(path.join(ROOT, "Pulumi.yaml"));
  const { config, secretKeys } = readStackConfig(configFile, project);
  const collect = installEngine({ project, stack, config, secretKeys });
  // The program reads its config and registers its resources as it loads.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require(path.join(ROOT, "index"));
  return collect();
}

/** The plan of another revision (its own program and stack file) or of another stack file. */
function planOf(against: string, opts: Options): Plan {
  let cwd = ROOT;
  let args = ["--stack", opts.stack, "--json"];
  let tmp: string | undefined;
  if (fs.existsSync(against)) {
    args.push("--config", path.resolve(against));
  } else {
    const verify = spawnSync("git", ["rev-parse", "--verify", "--quiet", `${against}^{commit}`], {
      cwd: ROOT,
    });
    if (verify.status !== 0) throw new UsageError(`--diff ${against}: neither a file nor a git revision`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "runner-fleet-base-"));
    const archive = spawnSync("sh", ["-c", `git archive "$1" | tar -x -C "$2"`, "sh", against, tmp], {
      cwd: ROOT,
    });
    if (archive.status !== 0) throw new Error(`git archive ${against} failed: ${archive.stderr}`);
    const stackFile = opts.config
      ? path.join(tmp, path.relative(ROOT, path.resolve(opts.config)))
      : path.join(tmp, `Pulumi.${opts.stack}.yaml`);
    if (!fs.existsSync(stackFile) || !fs.existsSync(path.join(tmp, "tools", "plan.ts"))) {
      fs.rmSync(tmp, { recursive: true, force: true });
      return { project: "", stack: opts.stack, resources: [], calls: [] };
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(tmp, "node_modules"));
    cwd = tmp;
    args = [...args, "--config", stackFile];
  }
  try {
    const run = spawnSync(
      process.execPath,
      ["-r", "ts-node/register/transpile-only", "tools/plan.ts", ...args],
      {
        cwd,
        encoding: "utf8",
        maxBuffer: 512 * 1024 * 1024,
      },
    );
    if (run.status !== 0) throw new Error(`planning ${against} failed (exit ${run.status}):\n${run.stderr}`);
    return JSON.parse(run.stdout) as Plan;
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function get(r: PlannedResource, p: string): unknown {
  return p.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], r.inputs);
}

function renderTables(plan: Plan): string {
  const vms = plan.resources.filter((r) => r.type === "proxmoxve:index/vmLegacy:VmLegacy");
  const vmRows = vms.map((r) => {
    const ipv4 = (get(r, "initialization.ipConfigs") as { ipv4?: { address?: string } }[] | undefined)?.[0]
      ?.ipv4;
    const tags = (get(r, "tags") as string[] | undefined) ?? [];
    const role = tags.find((t) => t === "primary" || t === "secondary") ?? "";
    const disk = (get(r, "disks") as { size?: number }[] | undefined)?.[0]?.size;
    const after = r.dependsOn
      .filter((d) => d.startsWith("proxmoxve:index/vmLegacy:VmLegacy::"))
      .map((d) => d.split("::")[1]);
    return [
      String(get(r, "name")),
      role,
      String(get(r, "nodeName")),
      String(get(r, "vmId")),
      ipv4?.address ?? "",
      String(get(r, "cpu.cores")),
      String(get(r, "memory.dedicated")),
      disk === undefined ? "" : String(disk),
      after.join(",") || "-",
    ];
  });
  const resRows = plan.resources.map((r) => [r.type, r.name, r.parent ?? "-", r.protect ? "yes" : ""]);
  return [
    `${plan.project} / ${plan.stack}: ${vms.length} runner(s), ${plan.resources.length} resource(s), ` +
      `${plan.calls.length} provider function call(s)${plan.calls.length ? `: ${plan.calls.join(", ")}` : ""}`,
    "",
    table(["RUNNER", "ROLE", "NODE", "VMID", "IPV4", "CORES", "MEM_MB", "DISK_GB", "CLONES_AFTER"], vmRows),
    "",
    table(["TYPE", "NAME", "PARENT", "PROTECT"], resRows),
    "",
  ].join("\n");
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(
      `plan: ${(e as Error).message}\nusage: npm run plan -- --stack <stack> [--config <file>] [--json] [--diff <git-ref or file>]\n`,
    );
    return 1;
  }
  const configFile = path.resolve(opts.config ?? path.join(ROOT, `Pulumi.${opts.stack}.yaml`));
  if (!fs.existsSync(configFile)) {
    process.stderr.write(`plan: no stack file ${configFile}\n`);
    return 1;
  }
  let plan: Plan;
  try {
    plan = await evaluate(opts.stack, configFile);
  } catch (e) {
    if ((e as Error).name === "ConfigError" || e instanceof StackFileError) {
      const problems = (e as { problems?: string[] }).problems ?? [(e as Error).message];
      process.stderr.write(problems.map((p) => `${p}\n`).join(""));
      return 2;
    }
    throw e;
  }
  if (opts.diff) {
    const diff = diffPlans(planOf(opts.diff, opts), plan, opts.diff);
    process.stdout.write(opts.json ? `${JSON.stringify(diff, null, 2)}\n` : renderDiffMarkdown(diff));
    return 0;
  }
  process.stdout.write(opts.json ? `${JSON.stringify(plan, null, 2)}\n` : renderTables(plan));
  return 0;
}

process.on("unhandledRejection", (e) => {
  process.stderr.write(`plan: ${(e as Error)?.stack ?? String(e)}\n`);
  exitAfterFlush(1);
});

/** Exits once everything written so far has reached the pipe: a bare exit would cut piped output short. */
function exitAfterFlush(code: number): void {
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}

main().then(exitAfterFlush, (e: Error) => {
  process.stderr.write(`plan: ${e.stack ?? e.message}\n`);
  exitAfterFlush(1);
});
