// Runs component code in the recording mock engine and returns what the engine received.
import { installEngine, Plan, PlannedResource } from "../../tools/engine";

export async function planOf(
  build: () => void,
  opts: { stack?: string; config?: Record<string, string>; secretKeys?: string[] } = {},
): Promise<Plan> {
  const collect = installEngine({
    project: "runner-fleet",
    stack: opts.stack ?? "test",
    config: opts.config ?? {},
    secretKeys: opts.secretKeys ?? [],
  });
  build();
  return collect();
}

/** The one resource of that type and name; throws when absent so a test cannot pass vacuously. */
export function find(plan: Plan, type: string, name: string): PlannedResource {
  const found = plan.resources.filter((r) => r.type === type && r.name === name);
  if (found.length !== 1) {
    throw new Error(`expected one ${type}::${name}, found ${found.length}`);
  }
  return found[0];
}

export function ofType(plan: Plan, type: string): PlannedResource[] {
  return plan.resources.filter((r) => r.type === type);
}

export const T = {
  vm: "proxmoxve:index/vmLegacy:VmLegacy",
  runnerVm: "runner-fleet:proxmox:RunnerVm",
  fleet: "runner-fleet:fleet:RunnerFleet",
  githubRunner: "runner-fleet:github:GithubRunner",
  remote: "command:remote:Command",
  local: "command:local:Command",
  copy: "command:remote:CopyToRemote",
  env: "github:index/repositoryEnvironment:RepositoryEnvironment",
  branchPolicy: "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy",
  envVar: "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable",
  runnerGroup: "github:index/actionsRunnerGroup:ActionsRunnerGroup",
} as const;
