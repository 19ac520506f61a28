// One runner's registration with GitHub, on its VM, after the VM is ready:
//   <name>-install-script  the pinned, checksum-verifying install script copied to the VM
//   <name>-token           a registration token minted on the operator's machine, at apply time only, and
//                          only when the runner is (re)registered (its triggers are the registration's inputs)
//   <name>-install         installs, verifies, registers and starts the runner service over SSH; the token
//                          travels on stdin, never on a command line, in a log or on the VM's disk
//   <name>-deregister      removes the runner from GitHub by name when it is deleted, whether or not the VM
//                          still exists (GitHub keeps offline runners for weeks otherwise)
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { GithubConfig, RunnerConfig } from "../stacks/schema";
import { RunnerSpec } from "../stacks/validate";
import { assetFile, sha256, shq } from "./assets";
import { RunnerVm } from "./runnerVm";

export const INSTALL_SCRIPT = "assets/runner/install-runner.sh";
export const API_SCRIPT = "assets/runner/github-runner-api.sh";

export interface GithubTarget {
  github: GithubConfig;
  owner: string;
  /** Secret: the GitHub credential the token and deregistration calls use. */
  token: pulumi.Input<string>;
}

export interface GithubRunnerArgs {
  runner: RunnerSpec;
  stack: string;
  software: RunnerConfig;
  target: GithubTarget;
  vm: RunnerVm;
  /** The cloud-init user the install script is copied to and run by (through sudo). */
  sshUser: string;
  /** Installs that must finish first: rolls re-registrations out in batches (see RunnerFleet). */
  installAfter?: pulumi.Resource[];
  protect?: boolean;
}

/** The labels a runner registers with (GitHub adds self-hosted, linux and x64 itself). */
export function runnerLabels(runner: RunnerSpec, stack: string, software: RunnerConfig): string[] {
  return [...new Set([stack, runner.role, ...software.extraLabels, ...runner.labels])];
}

export function githubUrl(target: Pick<GithubTarget, "github" | "owner">): string {
  return target.github.scope === "organization"
    ? `https://github.com/${target.owner}`
    : `https://github.com/${target.owner}/${target.github.repository}`;
}

/** The tarball URL: the mirror's (`{version}` is replaced) or GitHub's release asset. */
export function downloadUrl(software: RunnerConfig): string {
  const v = software.version;
  return software.downloadUrl
    ? software.downloadUrl.replace(/\{version\}/g, v)
    : `https://github.com/actions/runner/releases/download/v${v}/actions-runner-linux-x64-${v}.tar.gz`;
}

/**
 * Pure: everything that, when it changes, must re-register the runner, as readable `key=value` strings
 * (they are the commands' triggers, so a plan diff names the setting that changed).
 */
export function registrationInputs(args: Omit<GithubRunnerArgs, "vm" | "installAfter" | "protect">): {
  env: Record<string, string>;
  triggers: string[];
} {
  const { runner, stack, software, target } = args;
  const env: Record<string, string> = {
    RUNNER_VERSION: software.version,
    RUNNER_SHA256: software.sha256.toLowerCase(),
    RUNNER_DOWNLOAD_URL: downloadUrl(software),
    RUNNER_USER: software.user,
    RUNNER_NAME: runner.name,
    RUNNER_LABELS: runnerLabels(runner, stack, software).join(","),
    RUNNER_GROUP: target.github.scope === "organization" ? (target.github.runnerGroup ?? "") : "",
    RUNNER_EPHEMERAL: String(software.ephemeral),
    GITHUB_URL: githubUrl(target),
  };
  const triggers = [
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    `script=sha256:${assetFile(INSTALL_SCRIPT).sha256}`,
  ];
  return { env: { ...env, RUNNER_FINGERPRINT: sha256(triggers.join("\n")) }, triggers };
}

/** The environment of the operator-side GitHub API calls (the token is added as a secret). */
export function apiEnvironment(
  target: Omit<GithubTarget, "token">,
  runnerName: string,
): Record<string, string> {
  return {
    GITHUB_SCOPE: target.github.scope,
    GITHUB_OWNER: target.owner,
    GITHUB_REPOSITORY: target.github.repository,
    RUNNER_NAME: runnerName,
  };
}

export class GithubRunner extends pulumi.ComponentResource {
  public readonly install: command.remote.Command;
  public readonly deregister: command.local.Command;
  public readonly labels: string[];

  constructor(name: string, args: GithubRunnerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("runner-fleet:github:GithubRunner", name, {}, opts);
    const { env, triggers } = registrationInputs(args);
    this.labels = env.RUNNER_LABELS.split(",");
    const api = assetFile(API_SCRIPT);
    const apiEnv = {
      ...apiEnvironment(args.target, args.runner.name),
      GITHUB_TOKEN: pulumi.secret(args.target.token),
    };
    const vmTriggers = [...triggers, args.vm.vm.id];
    const remoteScript = `/home/${args.sshUser}/runner-fleet-install-runner.sh`;

    const script = new command.remote.CopyToRemote(
      `${name}-install-script`,
      {
        connection: args.vm.connection,
        source: new pulumi.asset.FileAsset(INSTALL_SCRIPT),
        remotePath: remoteScript,
        triggers: vmTriggers,
      },
      { parent: this, dependsOn: [args.vm.ready] },
    );

    const token = new command.local.Command(
      `${name}-token`,
      {
        interpreter: ["/bin/bash", "-c"],
        create: `set -- registration-token\n${api.text}`,
        environment: apiEnv,
        triggers: vmTriggers,
        // stdout is the token: never logged, and stored only as a secret.
        logging: "stderr",
      },
      { parent: this, dependsOn: [args.vm.ready], additionalSecretOutputs: ["stdout"] },
    );

    this.deregister = new command.local.Command(
      `${name}-deregister`,
      {
        interpreter: ["/bin/bash", "-c"],
        create: "true",
        // A rotated credential or an edited script updates this resource in place: only deleting the
        // runner deregisters it.
        update: "true",
        delete: `set -- deregister\n${api.text}`,
        environment: apiEnv,
        triggers: [env.GITHUB_URL, args.runner.name],
        logging: "stderr",
      },
      { parent: this, protect: args.protect },
    );

    const assignments = Object.entries(env)
      .map(([k, v]) => `${k}=${shq(v)}`)
      .join(" ");
    this.install = new command.remote.Command(
      `${name}-install`,
      {
        connection: args.vm.connection,
        create:
          `sudo env ${assignments} bash -c 'IFS= read -r RUNNER_TOKEN; export RUNNER_TOKEN; exec bash "$0"' ` +
          shq(remoteScript),
        stdin: pulumi.secret(token.stdout),
        triggers: vmTriggers,
        logging: "stderr",
      },
      { parent: this, dependsOn: [script, token, this.deregister, ...(args.installAfter ?? [])] },
    );

    this.registerOutputs({ labels: this.labels });
  }
}
