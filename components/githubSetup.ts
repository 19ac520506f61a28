// The GitHub side shared by the fleet: deployment environments with their protection rules, branch
// policies and the variables that tell workflows which labels to put in `runs-on`; and, for organization
// scope, the runner group restricted to the selected repositories and workflows.
import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";
import { EnvironmentConfig, GithubConfig } from "../stacks/schema";

export interface GithubSetupArgs {
  github: GithubConfig;
  environments: EnvironmentConfig[];
  /** Labels workflows target, per role: exported as environment variables `RUNNER_FLEET_LABELS_<ROLE>`. */
  labelsByRole: Record<string, string[]>;
  provider: github.Provider;
  protect?: boolean;
}

/** Pure: the variables of one environment: the configured ones plus the fleet's label sets as JSON. */
export function environmentVariables(
  env: EnvironmentConfig,
  labelsByRole: Record<string, string[]>,
): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const role of Object.keys(labelsByRole).sort()) {
    vars[`RUNNER_FLEET_LABELS_${role.toUpperCase()}`] = JSON.stringify([
      "self-hosted",
      ...labelsByRole[role],
    ]);
  }
  return { ...vars, ...env.variables };
}

export class GithubSetup extends pulumi.ComponentResource {
  public readonly environments: Record<string, github.RepositoryEnvironment> = {};
  public readonly runnerGroup?: github.ActionsRunnerGroup;

  constructor(name: string, args: GithubSetupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("runner-fleet:github:GithubSetup", name, {}, opts);
    const child = { parent: this, provider: args.provider };
    const repository = args.github.repository;

    for (const env of args.environments) {
      const users = env.reviewers.users.map((username) =>
        github.getUserOutput({ username }, child).apply((u) => Number(u.id)),
      );
      const teams = env.reviewers.teams.map((slug) =>
        github.getTeamOutput({ slug }, child).apply((t) => Number(t.id)),
      );
      const environment = new github.RepositoryEnvironment(
        `env-${env.name}`,
        {
          repository,
          environment: env.name,
          waitTimer: env.waitTimerMinutes,
          preventSelfReview: env.preventSelfReview,
          canAdminsBypass: env.canAdminsBypass,
          reviewers: users.length + teams.length > 0 ? [{ users, teams }] : [],
          deploymentBranchPolicy:
            env.branches.length > 0 ? { protectedBranches: false, customBranchPolicies: true } : undefined,
        },
        { ...child, protect: args.protect },
      );
      this.environments[env.name] = environment;

      for (const branchPattern of env.branches) {
        new github.RepositoryEnvironmentDeploymentPolicy(
          `env-${env.name}-branch-${branchPattern}`,
          { repository, environment: env.name, branchPattern },
          { ...child, dependsOn: [environment] },
        );
      }
      const variables = environmentVariables(env, args.labelsByRole);
      for (const variableName of Object.keys(variables).sort()) {
        new github.ActionsEnvironmentVariable(
          `env-${env.name}-var-${variableName}`,
          { repository, environment: env.name, variableName, value: variables[variableName] },
          { ...child, dependsOn: [environment] },
        );
      }
    }

    if (args.github.scope === "organization" && args.github.runnerGroup) {
      const repositories = args.github.runnerGroupRepositories ?? [repository];
      const workflows = args.github.runnerGroupWorkflows ?? [];
      this.runnerGroup = new github.ActionsRunnerGroup(
        `runner-group-${args.github.runnerGroup}`,
        {
          name: args.github.runnerGroup,
          visibility: "selected",
          selectedRepositoryIds: repositories.map((name) =>
            github.getRepositoryOutput({ name }, child).apply((r) => r.repoId),
          ),
          restrictedToWorkflows: workflows.length > 0,
          selectedWorkflows: workflows,
          allowsPublicRepositories: false,
        },
        { ...child, protect: args.protect },
      );
    }

    this.registerOutputs({});
  }
}
