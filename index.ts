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
});

export const runners = fleet.runners;
