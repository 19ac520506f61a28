// Explicit providers built from the provider namespaces' config, so every credential enters the program as
// a Pulumi secret and every resource names the provider it uses.
import * as proxmoxve from "@muhlba91/pulumi-proxmoxve";
import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";
import * as grafana from "@pulumiverse/grafana";
import { ProviderSettings } from "../stacks/loader";

export interface Providers {
  proxmox: proxmoxve.Provider;
  github: github.Provider;
  grafana?: grafana.Provider;
}

export function createProviders(settings: ProviderSettings, opts?: pulumi.CustomResourceOptions): Providers {
  return {
    proxmox: new proxmoxve.Provider(
      "proxmoxve",
      {
        endpoint: settings.proxmox.endpoint,
        apiToken: pulumi.secret(settings.proxmox.apiToken),
        insecure: settings.proxmox.insecure,
      },
      opts,
    ),
    github: new github.Provider(
      "github",
      { owner: settings.github.owner, token: pulumi.secret(settings.github.token) },
      opts,
    ),
    grafana: settings.grafana
      ? new grafana.Provider(
          "grafana",
          { url: settings.grafana.url, auth: pulumi.secret(settings.grafana.auth) },
          opts,
        )
      : undefined,
  };
}
