// Reads the stack's config through Pulumi, validates all of it, and fails before any resource exists.
import * as pulumi from "@pulumi/pulumi";
import { keySchemas, scrapeSource } from "./schema";
import { FleetSpec, SECRET_KEYS, validateFleetConfig } from "./validate";

/** Every problem in the stack config at once, one line each, each starting with its config path. */
export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(
      `invalid stack configuration (${problems.length} problem(s)):\n${problems.map((p) => `  ${p}`).join("\n")}`,
    );
    this.name = "ConfigError";
  }
}

export interface ProviderSettings {
  proxmox: { endpoint: string; insecure: boolean; apiToken: pulumi.Output<string> };
  github: { owner: string; token: pulumi.Output<string> };
  /** Present when `runner-fleet:monitoring` is configured. */
  grafana?: { url: string; auth: pulumi.Output<string> };
}

export interface StackInputs {
  fleet: FleetSpec;
  providers: ProviderSettings;
  /** The private key remote commands log in with: a secret, never a plain string. */
  sshPrivateKey: pulumi.Output<string>;
  /** Webhook or Slack URL of the alert contact point, when one is configured. */
  alertWebhookUrl?: pulumi.Output<string>;
}

/** Parses a config value that holds JSON (objects, arrays); other strings are returned unchanged. */
function readJson(cfg: pulumi.Config, key: string): unknown {
  const text = cfg.get(key);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function loadStack(stack: string = pulumi.getStack()): StackInputs {
  const own = new pulumi.Config("runner-fleet");
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(keySchemas)) raw[key] = readJson(own, key);
  // Every other key of the namespace too, so a misspelt one (`runner-fleet:pool`) is reported, not ignored.
  // The secret keys are passed as present without reading them: their values never reach validation.
  for (const full of Object.keys(pulumi.runtime.allConfig())) {
    const key = full.slice("runner-fleet:".length);
    if (full.startsWith("runner-fleet:") && !(key in raw))
      raw[key] = SECRET_KEYS.includes(key) ? "[secret]" : true;
  }

  const result = validateFleetConfig(raw, stack);
  const problems = result.ok ? [] : [...result.errors];

  const requireSecret = (cfg: pulumi.Config, ns: string, key: string, hint: string) => {
    const value = cfg.getSecret(key);
    if (value === undefined) problems.push(`${ns}:${key}: is required; set it with ${hint}`);
    return value;
  };
  const requirePlain = (cfg: pulumi.Config, ns: string, key: string, hint: string) => {
    const value = cfg.get(key);
    if (value === undefined || value === "") problems.push(`${ns}:${key}: is required; set it with ${hint}`);
    return value ?? "";
  };

  const sshPrivateKey = requireSecret(
    own,
    "runner-fleet",
    "sshPrivateKey",
    "pulumi config set --secret runner-fleet:sshPrivateKey < ~/.ssh/runner-fleet",
  );

  const proxmoxCfg = new pulumi.Config("proxmoxve");
  const endpoint = requirePlain(
    proxmoxCfg,
    "proxmoxve",
    "endpoint",
    "pulumi config set proxmoxve:endpoint https://pve:8006/",
  );
  if (endpoint && !/^https?:\/\//.test(endpoint)) problems.push(`proxmoxve:endpoint: must be an http(s) URL`);
  const apiToken = requireSecret(
    proxmoxCfg,
    "proxmoxve",
    "apiToken",
    "pulumi config set --secret proxmoxve:apiToken",
  );

  const githubCfg = new pulumi.Config("github");
  const owner = requirePlain(githubCfg, "github", "owner", "pulumi config set github:owner <org or user>");
  const githubToken = requireSecret(githubCfg, "github", "token", "pulumi config set --secret github:token");

  let grafana: ProviderSettings["grafana"];
  let alertWebhookUrl: pulumi.Output<string> | undefined;
  if (raw.monitoring !== undefined) {
    const grafanaCfg = new pulumi.Config("grafana");
    const url = requirePlain(
      grafanaCfg,
      "grafana",
      "url",
      "pulumi config set grafana:url https://grafana.example.com/",
    );
    const auth = requireSecret(
      grafanaCfg,
      "grafana",
      "auth",
      "pulumi config set --secret grafana:auth <service account token>",
    );
    if (auth) grafana = { url, auth };
    if (result.ok && result.fleet.monitoring && scrapeSource(result.fleet.monitoring) === undefined) {
      problems.push(
        "runner-fleet:monitoring.prometheus.scrapeFrom: is required (the only address allowed to scrape the exporters) unless prometheus.host is an IPv4 address",
      );
    }
    const contactType = result.ok ? result.fleet.monitoring?.grafana.contactPoint?.type : undefined;
    alertWebhookUrl = own.getSecret("alertWebhookUrl");
    if ((contactType === "webhook" || contactType === "slack") && alertWebhookUrl === undefined) {
      problems.push(
        `runner-fleet:alertWebhookUrl: is required for a ${contactType} contact point; set it with pulumi config set --secret runner-fleet:alertWebhookUrl`,
      );
    }
  }

  if (!result.ok || problems.length > 0 || !sshPrivateKey || !apiToken || !githubToken) {
    throw new ConfigError(problems);
  }
  return {
    fleet: result.fleet,
    providers: {
      proxmox: { endpoint, insecure: proxmoxCfg.getBoolean("insecure") ?? false, apiToken },
      github: { owner, token: githubToken },
      grafana,
    },
    sshPrivateKey,
    alertWebhookUrl,
  };
}
