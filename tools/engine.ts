// Pulumi's mock engine, recording every registration as the real engine would receive it: type, name,
// parent, dependencies, protect, and the raw inputs in which secrets are still marked as secrets.
import * as pulumi from "@pulumi/pulumi";
import { MockMonitor, Mocks, MockCallArgs, MockResourceArgs } from "@pulumi/pulumi/runtime/mocks";
import { fnv1a } from "../stacks/validate";

// setMocks() builds its own MockMonitor; to record requests we install ours with setMockOptions() and switch
// on the same engine features setMocks does, through the SDK's (internal, untyped) state store.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { getStore } = require("@pulumi/pulumi/runtime/state") as {
  getStore(): {
    supportsSecrets: boolean;
    supportsResourceReferences: boolean;
    supportsOutputValues: boolean;
  };
};

const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
const RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e";
const SIG_KEY = "4dabf18193072939515e22adb298388d";
const ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17";
const ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7";
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export const SECRET_TEXT = "[secret]";
export const UNKNOWN_TEXT = "[unknown]";

export interface PlannedResource {
  type: string;
  name: string;
  /** `<type>::<name>` of the parent, or null at the root. */
  parent: string | null;
  dependsOn: string[];
  protect: boolean;
  inputs: Record<string, unknown>;
}

export interface Plan {
  project: string;
  stack: string;
  resources: PlannedResource[];
  calls: string[];
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getDependenciesList(): string[];
  getProtect(): boolean;
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
}

interface InvokeRequest {
  getTok(): string;
}

type Callback = (err: unknown, response: unknown) => void;

/** `urn:pulumi:stack::project::a$b::name` -> `b::name`. */
export function urnToRef(urn: string): string {
  const parts = urn.split("::");
  const qualifiedType = parts[2] ?? "";
  const type = qualifiedType.split("$").pop() ?? qualifiedType;
  return `${type}::${parts.slice(3).join("::")}`;
}

/** Replaces the engine's wire markers with readable text and sorts object keys, for stable output. */
export function normalize(value: unknown): unknown {
  if (value === UNKNOWN) return UNKNOWN_TEXT;
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj[SIG_KEY] === SECRET_SIG) return SECRET_TEXT;
    if (obj[SIG_KEY] === RESOURCE_SIG) return urnToRef(String(obj.urn));
    if (obj[SIG_KEY] === ASSET_SIG || obj[SIG_KEY] === ARCHIVE_SIG) {
      const kind = obj[SIG_KEY] === ASSET_SIG ? "asset" : "archive";
      return `${kind}:${String(obj.path ?? obj.uri ?? "(inline)")}`;
    }
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(obj).sort()) out[k] = normalize(obj[k]);
    return out;
  }
  return value;
}

/** Deterministic stand-ins for the provider functions the program may call during a plan. */
function mockCall(args: MockCallArgs): Record<string, unknown> {
  switch (args.token) {
    case "github:index/getUser:getUser":
      return { id: fakeId(`user:${args.inputs.username}`), login: args.inputs.username };
    case "github:index/getTeam:getTeam":
      return { id: fakeId(`team:${args.inputs.slug}`), slug: args.inputs.slug };
    case "github:index/getRepository:getRepository":
      return { repoId: Number(fakeId(`repo:${args.inputs.name}`)), name: args.inputs.name };
    default:
      throw new Error(`the offline plan has no stand-in for provider function ${args.token}`);
  }
}

function fakeId(s: string): string {
  return String(fnv1a(s) % 10_000_000);
}

class RecordingMonitor extends MockMonitor {
  public readonly registrations: RegisterRequest[] = [];
  public readonly calls = new Set<string>();

  async registerResource(req: RegisterRequest, callback: Callback): Promise<void> {
    this.registrations.push(req);
    return super.registerResource(req, callback);
  }

  async invoke(req: InvokeRequest, callback: Callback): Promise<void> {
    this.calls.add(req.getTok());
    return super.invoke(req, callback);
  }
}

export interface EngineOptions {
  project: string;
  stack: string;
  /** `namespace:key` -> value as the Pulumi CLI passes it (objects as JSON text). */
  config: Record<string, string>;
  /** Keys whose values are secrets. */
  secretKeys: string[];
}

/** Installs the recording mock engine; returns a function that, once the program ran, yields the plan. */
export function installEngine(opts: EngineOptions): () => Promise<Plan> {
  const mocks: Mocks = {
    newResource: (args: MockResourceArgs) => ({ id: undefined, state: args.inputs }),
    call: mockCall,
  };
  pulumi.runtime.setAllConfig(opts.config, opts.secretKeys);
  const monitor = new RecordingMonitor(mocks);
  pulumi.runtime.setMockOptions(monitor, opts.project, opts.stack, true);
  // The features setMocks switches on (setMockOptions resets them): secrets and resource references travel
  // to the monitor marked as such, as they do to the real engine.
  const store = getStore();
  store.supportsSecrets = true;
  store.supportsResourceReferences = true;
  store.supportsOutputValues = false;

  return async () => {
    await pulumi.runtime.disconnect();
    const resources = monitor.registrations.map((req): PlannedResource => ({
      type: req.getType(),
      name: req.getName(),
      parent: req.getParent() ? urnToRef(req.getParent()) : null,
      dependsOn: [...new Set(req.getDependenciesList().map(urnToRef))].sort(),
      protect: req.getProtect(),
      inputs: normalize(req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>,
    }));
    resources.sort((a, b) => (a.name === b.name ? cmp(a.type, b.type) : cmp(a.name, b.name)));
    return { project: opts.project, stack: opts.stack, resources, calls: [...monitor.calls].sort() };
  };
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
