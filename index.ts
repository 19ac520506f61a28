// runner-fleet: reads and validates the stack config, builds the fleet, exports its outputs.
import { createProviders } from "./components/providers";
import { RunnerFleet } from "./components/runnerFleet";
import { loadStack } from "./stacks/loader";

const stack = loadStack();
const providers = createProviders(stack.providers);
const fleet = new RunnerFleet("runner-fleet", {
  fleet: stack.fleet,
  login: { user: stack.fleet.proxmox.sshUser, privateKey: stack.sshPrivateKey },
  proxmoxProvider: providers.proxmox,
  githubProvider: providers.github,
  githubOwner: stack.providers.github.owner,
  githubToken: stack.providers.github.token,
  protect: stack.fleet.stack === "production",
  monitoring: providers.grafana
    ? { grafanaProvider: providers.grafana, alertWebhookUrl: stack.alertWebhookUrl }
    : undefined,
});

export const runners = fleet.runners;
/** Prometheus file_sd targets, one per runner (also written on the Prometheus host when configured). */
export const scrapeTargets = fleet.monitoring?.scrapeTargetsJson;
