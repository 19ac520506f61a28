// Real-run tests of the runner lifecycle scripts in assets/runner: shellcheck, then each script
// executed with bash against loopback HTTP servers, a stub runner tarball and a fake systemctl.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  buildRunnerTarball,
  FAKE_SYSTEMCTL,
  LoopbackServer,
  readStubLog,
  RecordedRequest,
  Reply,
  RUNNER_ASSETS,
  runScript,
  RunResult,
  sha256,
  snapshotTree,
  startServer,
  StubCall,
  Tarball,
  writeExecutable,
} from "./support/runner-fixtures";

const IS_ROOT = process.getuid?.() === 0;
const REG_TOKEN = "AAREGTOKENx7Qm2Lr9Vt4Wp8Kc3Zs6Hd1";
const ORG_REG_TOKEN = "AAORGTOKENb5Nf0Jy2Gx7Te4Ru9Ow3Pq";
const PAT = "ghp_FakePat0123456789abcdefABCDEF012345";
const WRONG_PAT = "ghp_WrongPat9876543210zyxwvuZYXWVU98765";
const SECRETS = [REG_TOKEN, ORG_REG_TOKEN, PAT, WRONG_PAT];
const SYSTEM_PATH = `${process.env.PATH ?? "/usr/bin:/bin"}:/usr/local/sbin:/usr/sbin:/sbin`;

/**
 * Runs a script and asserts that no secret appears in its stderr, nor in its stdout except the one
 * secret the call is meant to print (`printsSecret`).
 */
async function run(
  script: string,
  args: string[],
  env: Record<string, string>,
  printsSecret?: string,
): Promise<RunResult> {
  const result = await runScript(script, args, env);
  for (const secret of SECRETS) {
    assert.ok(
      secret === printsSecret || !result.stdout.includes(secret),
      `${script} printed a secret on stdout:\n${result.stdout}`,
    );
    assert.ok(!result.stderr.includes(secret), `${script} printed a secret on stderr:\n${result.stderr}`);
  }
  return result;
}

function show(result: RunResult): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;
}

/** Every file under `dir` whose content contains `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const hits: string[] = [];
  for (const [rel, entry] of Object.entries(snapshotTree(dir))) {
    if (entry.startsWith("f ") && fs.readFileSync(path.join(dir, rel), "utf8").includes(needle))
      hits.push(rel);
  }
  return hits;
}

describe("runner scripts: shellcheck", () => {
  it("shellcheck -x reports nothing for every assets/runner/*.sh", () => {
    const scripts = fs.readdirSync(RUNNER_ASSETS).filter((f) => f.endsWith(".sh"));
    assert.deepEqual(scripts.sort(), ["github-runner-api.sh", "install-runner.sh", "uninstall-runner.sh"]);
    const result = spawnSync("shellcheck", ["-x", ...scripts], { cwd: RUNNER_ASSETS, encoding: "utf8" });
    assert.equal(result.error, undefined, `cannot run shellcheck: ${String(result.error)}`);
    assert.equal(result.status, 0, `shellcheck findings:\n${result.stdout}${result.stderr}`);
    assert.equal(result.stdout, "");
  });
});

describe("install-runner.sh", function () {
  const VERSION = "2.321.0";
  const NEXT_VERSION = "2.322.0";
  const GITHUB_URL = "https://github.com/acme/widgets";
  const LABELS = "self-hosted,linux,x64,staging,primary";
  let root = "";
  let tmpDir = "";
  let stubLog = "";
  let systemdDir = "";
  let systemctl = "";
  let runnerUser = "";
  let v1: Tarball;
  let v2: Tarball;
  let tampered: Buffer;
  let server: LoopbackServer;
  const served = new Map<string, Buffer>();

  const urlFor = (version: string): string =>
    `${server.url}/download/v${version}/actions-runner-linux-x64-${version}.tar.gz`;

  interface Layout {
    home: string;
    work: string;
    etc: string;
  }
  let main: Layout;

  function layout(name: string): Layout {
    return {
      home: path.join(root, name, "opt", "actions-runner"),
      work: path.join(root, name, "var", "_work"),
      etc: path.join(root, name, "etc", "runner-fleet"),
    };
  }

  /** Environment of one run; a `null` override removes the variable. */
  function installEnv(where: Layout, overrides: Record<string, string | null> = {}): Record<string, string> {
    const env: Record<string, string> = {
      PATH: SYSTEM_PATH,
      HOME: "/root",
      LANG: "C",
      TMPDIR: tmpDir,
      RF_STUB_LOG: stubLog,
      RF_SYSTEMD_DIR: systemdDir,
      RUNNER_VERSION: VERSION,
      RUNNER_SHA256: v1.sha256,
      RUNNER_DOWNLOAD_URL: urlFor(VERSION),
      RUNNER_USER: runnerUser,
      RUNNER_HOME: where.home,
      RUNNER_WORK_DIR: where.work,
      RUNNER_NAME: "stg-primary-1",
      RUNNER_LABELS: LABELS,
      RUNNER_GROUP: "",
      RUNNER_EPHEMERAL: "false",
      GITHUB_URL,
      RUNNER_TOKEN: REG_TOKEN,
      RUNNER_FINGERPRINT: "fp-1",
      RUNNER_FLEET_ETC: where.etc,
      RUNNER_FLEET_SYSTEMCTL: systemctl,
    };
    for (const [key, value] of Object.entries(overrides)) {
      if (value === null) delete env[key];
      else env[key] = value;
    }
    return env;
  }

  function registerArgs(
    labels: string,
    work: string,
    extra: string[] = [],
    name = "stg-primary-1",
  ): string[] {
    return [
      "--unattended",
      "--disableupdate",
      "--url",
      GITHUB_URL,
      "--token",
      REG_TOKEN,
      "--name",
      name,
      "--labels",
      labels,
      "--work",
      work,
      "--replace",
      ...extra,
    ];
  }

  const call = (script: string, user: string, args: string[]): StubCall => ({
    script,
    user,
    tokenInEnv: false,
    args,
  });
  const svc = (...args: string[]): StubCall => call("svc.sh", "root", args);
  const config = (args: string[]): StubCall => call("config.sh", runnerUser, args);
  const installDeps = (): StubCall => call("installdependencies.sh", "root", []);

  /** Empties the stub log; world-writable, since config.sh stubs log as the runner user. */
  function resetStubLog(): void {
    fs.writeFileSync(stubLog, "");
    fs.chmodSync(stubLog, 0o666);
  }

  function takeStubCalls(): StubCall[] {
    const calls = readStubLog(stubLog);
    resetStubLog();
    return calls;
  }

  /** Asserts that the install left no scratch directory beside RUNNER_HOME and nothing in TMPDIR. */
  function assertNoLeftovers(where: Layout): void {
    const parent = path.dirname(where.home);
    const expected = fs.existsSync(where.home) ? ["actions-runner"] : [];
    if (fs.existsSync(parent)) assert.deepEqual(fs.readdirSync(parent), expected, `leftovers in ${parent}`);
    assert.deepEqual(fs.readdirSync(tmpDir), [], "leftovers in TMPDIR");
  }

  const unitOf = (where: Layout): string => fs.readFileSync(path.join(where.home, ".service"), "utf8").trim();
  const serviceState = (unit: string): string[] =>
    ["enabled", "active"].filter((s) => fs.existsSync(path.join(systemdDir, `${unit}.${s}`)));

  before(async function () {
    if (!IS_ROOT) {
      console.log("    skipped: install-runner.sh needs root (useradd, chown, runuser); CI runs as root");
      this.skip();
    }
    root = fs.mkdtempSync(path.join(os.tmpdir(), "rf-install-"));
    // The runner user must traverse to RUNNER_HOME and the stub log.
    fs.chmodSync(root, 0o755);
    tmpDir = path.join(root, "tmp");
    systemdDir = path.join(root, "systemd");
    fs.mkdirSync(tmpDir);
    fs.mkdirSync(systemdDir);
    stubLog = path.join(root, "stub.log");
    systemctl = path.join(root, "bin", "systemctl");
    writeExecutable(systemctl, FAKE_SYSTEMCTL);
    const tarballs = path.join(root, "tarballs");
    fs.mkdirSync(tarballs);
    v1 = buildRunnerTarball(tarballs, VERSION);
    v2 = buildRunnerTarball(tarballs, NEXT_VERSION);
    tampered = Buffer.concat([v2.bytes, Buffer.from("tampered")]);
    runnerUser = `rft${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
    main = layout("main");
    server = await startServer((req: RecordedRequest): Reply => {
      const body = served.get(req.url);
      return body ? { status: 200, body } : { status: 404, body: "not found" };
    });
    served.set(new URL(urlFor(VERSION)).pathname, v1.bytes);
    served.set(new URL(urlFor(NEXT_VERSION)).pathname, v2.bytes);
  });

  beforeEach(() => resetStubLog());

  after(async () => {
    if (server) await server.close();
    if (runnerUser) spawnSync("userdel", ["-r", runnerUser], { encoding: "utf8" });
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it("rejects invalid input, RUNNER_USER=root included, before touching anything", async () => {
    const result = await run(
      "install-runner.sh",
      [],
      installEnv(main, { RUNNER_USER: "root", RUNNER_VERSION: "2.321", RUNNER_EPHEMERAL: "yes" }),
    );
    assert.equal(result.code, 2, show(result));
    assert.match(result.stderr, /install-runner: RUNNER_USER must not be root/);
    assert.match(result.stderr, /install-runner: RUNNER_VERSION must be x\.y\.z/);
    assert.match(result.stderr, /install-runner: RUNNER_EPHEMERAL must be true or false/);
    assert.equal(server.requests.length, 0);
    assert.ok(!fs.existsSync(path.join(root, "main")), "created files despite invalid input");
  });

  it("fails before downloading when a registration is needed and RUNNER_TOKEN is missing", async () => {
    const result = await run("install-runner.sh", [], installEnv(main, { RUNNER_TOKEN: null }));
    assert.notEqual(result.code, 0, show(result));
    assert.match(result.stderr, /install-runner: RUNNER_TOKEN is required: runner stg-primary-1 must be/);
    assert.equal(server.requests.length, 0);
    assert.ok(!fs.existsSync(main.home));
  });

  it("first install: verifies, installs, registers once as the runner user, starts the service", async () => {
    const result = await run("install-runner.sh", [], installEnv(main));
    assert.equal(result.code, 0, show(result));
    assert.match(result.stdout, /install-runner: converged: runner stg-primary-1 2\.321\.0/);
    assert.deepEqual(
      server.requests.map((r) => `${r.method} ${r.url}`),
      [`GET /download/v${VERSION}/actions-runner-linux-x64-${VERSION}.tar.gz`],
    );
    assert.deepEqual(takeStubCalls(), [
      installDeps(),
      config(registerArgs(LABELS, main.work)),
      svc("install", runnerUser),
      svc("start"),
    ]);
    const unit = unitOf(main);
    assert.equal(unit, "actions.runner.stub-stg-primary-1.service");
    assert.deepEqual(serviceState(unit), ["enabled", "active"]);

    const runnerEnv = path.join(main.etc, "runner.env");
    assert.equal(
      fs.readFileSync(runnerEnv, "utf8"),
      [
        "# Written by install-runner.sh (runner-fleet). No secrets.",
        "RUNNER_NAME=stg-primary-1",
        `RUNNER_VERSION=${VERSION}`,
        `RUNNER_LABELS=${LABELS}`,
        `RUNNER_HOME=${main.home}`,
        `RUNNER_WORK_DIR=${main.work}`,
        `RUNNER_USER=${runnerUser}`,
        "RUNNER_EPHEMERAL=false",
        "",
      ].join("\n"),
    );
    assert.equal(fs.statSync(runnerEnv).mode & 0o777, 0o644);
    assert.deepEqual(filesContaining(main.home, REG_TOKEN), [], "token written into RUNNER_HOME");
    assert.deepEqual(filesContaining(main.etc, REG_TOKEN), [], "token written into RUNNER_FLEET_ETC");

    // Ownership: everything belongs to the runner user except the root-owned state files and the
    // .service file that svc.sh writes as root.
    const uid = Number(spawnSync("id", ["-u", runnerUser], { encoding: "utf8" }).stdout.trim());
    assert.ok(uid > 0, `runner user ${runnerUser} missing or root`);
    const rootOwned = [".runner-fleet-version", ".runner-fleet-fingerprint", ".service"];
    for (const rel of Object.keys(snapshotTree(main.home))) {
      const owner = fs.lstatSync(path.join(main.home, rel)).uid;
      assert.equal(owner, rootOwned.includes(rel) ? 0 : uid, `owner of ${rel}`);
    }
    const work = fs.statSync(main.work);
    assert.equal(work.uid, uid);
    assert.equal(work.mode & 0o777, 0o750);
    assert.equal(
      fs.readFileSync(path.join(main.home, ".runner-fleet-version"), "utf8"),
      `${VERSION} ${v1.sha256}\n`,
    );
    assert.match(
      fs.readFileSync(path.join(main.home, ".runner-fleet-fingerprint"), "utf8"),
      /^[0-9a-f]{64}\n$/,
    );
    assertNoLeftovers(main);
  });

  it("second run with the same environment changes nothing and downloads nothing", async () => {
    const before = snapshotTree(main.home);
    const requests = server.requests.length;
    const result = await run("install-runner.sh", [], installEnv(main));
    assert.equal(result.code, 0, show(result));
    assert.equal(result.stdout, "install-runner: already converged\n");
    assert.equal(server.requests.length, requests, "downloaded again");
    assert.deepEqual(takeStubCalls(), []);
    assert.deepEqual(snapshotTree(main.home), before);
    assertNoLeftovers(main);
  });

  it("converged without a token; a stopped service is started again, nothing re-registered", async () => {
    const unit = unitOf(main);
    fs.rmSync(path.join(systemdDir, `${unit}.active`));
    const result = await run("install-runner.sh", [], installEnv(main, { RUNNER_TOKEN: null }));
    assert.equal(result.code, 0, show(result));
    assert.match(result.stdout, /is not active; starting it\ninstall-runner: already converged\n$/);
    assert.deepEqual(takeStubCalls(), [svc("start")]);
    assert.deepEqual(serviceState(unit), ["enabled", "active"]);
  });

  it("a changed fingerprint without RUNNER_TOKEN fails and leaves the runner untouched", async () => {
    const before = snapshotTree(main.home);
    const env = installEnv(main, { RUNNER_TOKEN: null, RUNNER_FINGERPRINT: "fp-2" });
    const result = await run("install-runner.sh", [], env);
    assert.notEqual(result.code, 0, show(result));
    assert.match(result.stderr, /RUNNER_TOKEN is required/);
    assert.deepEqual(takeStubCalls(), []);
    assert.deepEqual(snapshotTree(main.home), before);
  });

  it("a changed fingerprint (new labels) removes the old registration, then registers again", async () => {
    const labels = `${LABELS},gpu`;
    const requests = server.requests.length;
    const result = await run(
      "install-runner.sh",
      [],
      installEnv(main, { RUNNER_LABELS: labels, RUNNER_FINGERPRINT: "fp-2" }),
    );
    assert.equal(result.code, 0, show(result));
    assert.equal(server.requests.length, requests, "same version must not be downloaded again");
    assert.deepEqual(takeStubCalls(), [
      svc("stop"),
      svc("uninstall"),
      config(["remove", "--token", REG_TOKEN]),
      config(registerArgs(labels, main.work)),
      svc("install", runnerUser),
      svc("start"),
    ]);
    assert.match(fs.readFileSync(path.join(main.etc, "runner.env"), "utf8"), /^RUNNER_LABELS=.*,gpu$/m);

    const again = await run(
      "install-runner.sh",
      [],
      installEnv(main, { RUNNER_LABELS: labels, RUNNER_FINGERPRINT: "fp-2", RUNNER_TOKEN: null }),
    );
    assert.equal(again.stdout, "install-runner: already converged\n", show(again));
    assert.deepEqual(takeStubCalls(), []);
  });

  it("a tampered tarball is rejected before extraction; the installed runner stays intact", async () => {
    const before = snapshotTree(main.home);
    const etcBefore = snapshotTree(main.etc);
    const unit = unitOf(main);
    served.set(new URL(urlFor(NEXT_VERSION)).pathname, tampered);
    const result = await run(
      "install-runner.sh",
      [],
      installEnv(main, {
        RUNNER_VERSION: NEXT_VERSION,
        RUNNER_SHA256: v2.sha256,
        RUNNER_DOWNLOAD_URL: urlFor(NEXT_VERSION),
        RUNNER_FINGERPRINT: "fp-3",
      }),
    );
    served.set(new URL(urlFor(NEXT_VERSION)).pathname, v2.bytes);
    assert.notEqual(result.code, 0, show(result));
    assert.ok(
      result.stderr.includes(
        `install-runner: checksum mismatch for actions-runner-linux-x64-${NEXT_VERSION}.tar.gz: ` +
          `expected ${v2.sha256}, got ${sha256(tampered)}`,
      ),
      show(result),
    );
    assert.equal(server.requests.at(-1)?.url, new URL(urlFor(NEXT_VERSION)).pathname);
    assert.deepEqual(takeStubCalls(), []);
    assert.deepEqual(snapshotTree(main.home), before);
    assert.deepEqual(snapshotTree(main.etc), etcBefore);
    assert.deepEqual(serviceState(unit), ["enabled", "active"]);
    assertNoLeftovers(main);
  });

  it("an upgrade with the right checksum replaces the binaries and re-registers", async () => {
    const result = await run(
      "install-runner.sh",
      [],
      installEnv(main, {
        RUNNER_VERSION: NEXT_VERSION,
        RUNNER_SHA256: v2.sha256,
        RUNNER_DOWNLOAD_URL: urlFor(NEXT_VERSION),
        RUNNER_FINGERPRINT: "fp-3",
      }),
    );
    assert.equal(result.code, 0, show(result));
    assert.deepEqual(takeStubCalls(), [
      svc("stop"),
      svc("uninstall"),
      config(["remove", "--token", REG_TOKEN]),
      installDeps(),
      config(registerArgs(LABELS, main.work)),
      svc("install", runnerUser),
      svc("start"),
    ]);
    assert.equal(
      fs.readFileSync(path.join(main.home, "bin", "Runner.Listener"), "utf8"),
      `#!/usr/bin/env bash\necho ${NEXT_VERSION}\n`,
    );
    assert.equal(
      fs.readFileSync(path.join(main.home, ".runner-fleet-version"), "utf8"),
      `${NEXT_VERSION} ${v2.sha256}\n`,
    );
    assert.match(fs.readFileSync(path.join(main.etc, "runner.env"), "utf8"), /^RUNNER_VERSION=2\.322\.0$/m);
    assertNoLeftovers(main);
  });

  it("a failed registration is not recorded as converged; the next run registers without downloading", async () => {
    const env = installEnv(main, {
      RUNNER_VERSION: NEXT_VERSION,
      RUNNER_SHA256: v2.sha256,
      RUNNER_DOWNLOAD_URL: urlFor(NEXT_VERSION),
      RUNNER_FINGERPRINT: "fp-4",
    });
    const requests = server.requests.length;
    const result = await run("install-runner.sh", [], { ...env, RF_STUB_CONFIG_FAIL: "1" });
    assert.notEqual(result.code, 0, show(result));
    assert.match(result.stderr, /install-runner: config\.sh failed to register runner stg-primary-1/);
    assert.deepEqual(takeStubCalls(), [
      svc("stop"),
      svc("uninstall"),
      config(["remove", "--token", REG_TOKEN]),
      config(registerArgs(LABELS, main.work)),
    ]);
    assert.ok(
      !fs.existsSync(path.join(main.home, ".runner-fleet-fingerprint")),
      "failed run recorded as converged",
    );

    const retry = await run("install-runner.sh", [], env);
    assert.equal(retry.code, 0, show(retry));
    assert.equal(server.requests.length, requests, "downloaded although the binaries were in place");
    assert.deepEqual(takeStubCalls(), [
      config(registerArgs(LABELS, main.work)),
      svc("install", runnerUser),
      svc("start"),
    ]);
    assertNoLeftovers(main);
  });

  it("a tampered tarball on a first install leaves no runner directory and no temp files", async () => {
    const fresh = layout("fresh");
    served.set(new URL(urlFor(VERSION)).pathname, tampered);
    const result = await run("install-runner.sh", [], installEnv(fresh));
    served.set(new URL(urlFor(VERSION)).pathname, v1.bytes);
    assert.notEqual(result.code, 0, show(result));
    assert.match(
      result.stderr,
      /install-runner: checksum mismatch for actions-runner-linux-x64-2\.321\.0\.tar\.gz/,
    );
    assert.ok(!fs.existsSync(fresh.home), "half-installed runner left behind");
    assert.ok(!fs.existsSync(path.join(fresh.etc, "runner.env")));
    assert.deepEqual(takeStubCalls(), []);
    assertNoLeftovers(fresh);
  });

  it("ephemeral mode: registers with --ephemeral and the group; after its job, the next run re-registers", async () => {
    const eph = layout("ephemeral");
    const env = installEnv(eph, {
      RUNNER_NAME: "stg-ephemeral-1",
      RUNNER_EPHEMERAL: "true",
      RUNNER_GROUP: "Linux Builders",
      RUNNER_FINGERPRINT: "fp-eph",
    });
    const first = await run("install-runner.sh", [], env);
    assert.equal(first.code, 0, show(first));
    const registration = config(
      registerArgs(LABELS, eph.work, ["--runnergroup", "Linux Builders", "--ephemeral"], "stg-ephemeral-1"),
    );
    assert.deepEqual(takeStubCalls(), [
      installDeps(),
      registration,
      svc("install", runnerUser),
      svc("start"),
    ]);
    assert.match(fs.readFileSync(path.join(eph.etc, "runner.env"), "utf8"), /^RUNNER_EPHEMERAL=true$/m);

    // The runner ran its one job: it deleted its registration and its service stopped.
    const unit = unitOf(eph);
    for (const f of [".runner", ".credentials"]) fs.rmSync(path.join(eph.home, f));
    fs.rmSync(path.join(systemdDir, `${unit}.active`));

    const noToken = await run("install-runner.sh", [], { ...env, RUNNER_TOKEN: "" });
    assert.notEqual(noToken.code, 0, show(noToken));
    assert.match(noToken.stderr, /RUNNER_TOKEN is required/);
    assert.deepEqual(takeStubCalls(), []);

    const requests = server.requests.length;
    const again = await run("install-runner.sh", [], env);
    assert.equal(again.code, 0, show(again));
    assert.equal(server.requests.length, requests);
    assert.deepEqual(takeStubCalls(), [
      svc("stop"),
      svc("uninstall"),
      registration,
      svc("install", runnerUser),
      svc("start"),
    ]);
    assert.deepEqual(serviceState(unit), ["enabled", "active"]);
  });
});

describe("github-runner-api.sh", () => {
  let root = "";
  let curlArgvLog = "";
  let wrapperDir = "";
  let server: LoopbackServer;
  const runnersPage = (page: number): Reply => {
    const runners =
      page === 1
        ? Array.from({ length: 100 }, (_, i) => ({ id: 1000 + i, name: `other-${i}`, status: "online" }))
        : page === 2
          ? [
              { id: 4241, name: "stg-primary-10", status: "online" },
              { id: 4242, name: "stg-primary-1", status: "offline" },
              { id: 4243, name: "stg-secondary-1", status: "online" },
            ]
          : [];
    return { status: 200, body: JSON.stringify({ total_count: 103, runners }) };
  };

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "rf-api-"));
    curlArgvLog = path.join(root, "curl-argv.log");
    wrapperDir = path.join(root, "bin");
    const realCurl = spawnSync("bash", ["-c", "command -v curl"], { encoding: "utf8" }).stdout.trim();
    assert.ok(realCurl.startsWith("/"), "curl not found");
    // A curl wrapper that records its argv, to prove the token never reaches a command line.
    writeExecutable(
      path.join(wrapperDir, "curl"),
      `#!/usr/bin/env bash\nprintf '%s\\n' "$@" >>"$RF_CURL_ARGV_LOG"\nexec ${realCurl} "$@"\n`,
    );
    server = await startServer((req): Reply => {
      if (req.headers.authorization !== `Bearer ${PAT}`) {
        // Echo the presented credential, so the test proves the script redacts it.
        return {
          status: 401,
          body: JSON.stringify({ message: `Bad credentials: ${req.headers.authorization ?? ""}` }),
        };
      }
      const url = new URL(req.url, "http://localhost");
      const key = `${req.method} ${url.pathname}`;
      if (key === "POST /repos/acme/widgets/actions/runners/registration-token") {
        return {
          status: 201,
          body: JSON.stringify({ token: REG_TOKEN, expires_at: "2030-01-01T00:00:00Z" }),
        };
      }
      if (key === "POST /orgs/acme/actions/runners/registration-token") {
        return {
          status: 201,
          body: JSON.stringify({ token: ORG_REG_TOKEN, expires_at: "2030-01-01T00:00:00Z" }),
        };
      }
      if (key === "GET /repos/acme/widgets/actions/runners" && url.searchParams.get("per_page") === "100") {
        return runnersPage(Number(url.searchParams.get("page") ?? "1"));
      }
      if (key === "DELETE /repos/acme/widgets/actions/runners/4242") return { status: 204, body: "" };
      return { status: 404, body: JSON.stringify({ message: "Not Found" }) };
    });
  });

  beforeEach(() => {
    server.requests.length = 0;
    fs.rmSync(curlArgvLog, { force: true });
  });

  after(async () => {
    if (server) await server.close();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  function apiEnv(overrides: Record<string, string> = {}): Record<string, string> {
    return {
      PATH: `${wrapperDir}:${SYSTEM_PATH}`,
      HOME: root,
      LANG: "C",
      RF_CURL_ARGV_LOG: curlArgvLog,
      GITHUB_TOKEN: PAT,
      GITHUB_API_URL: `${server.url}/`,
      GITHUB_SCOPE: "repository",
      GITHUB_OWNER: "acme",
      GITHUB_REPOSITORY: "widgets",
      ...overrides,
    };
  }

  function assertTokenOnlyInHeader(expectedRequests: number): void {
    assert.equal(server.requests.length, expectedRequests);
    for (const req of server.requests) {
      assert.equal(req.headers.authorization, `Bearer ${PAT}`, `${req.method} ${req.url}`);
      assert.equal(req.headers.accept, "application/vnd.github+json");
      assert.equal(req.headers["x-github-api-version"], "2022-11-28");
    }
    const argv = fs.readFileSync(curlArgvLog, "utf8");
    assert.ok(argv.includes(server.url), "curl wrapper was not used");
    assert.ok(!argv.includes(PAT), `token on curl's command line:\n${argv}`);
  }

  it("registration-token prints exactly the token (repository scope)", async () => {
    const result = await run("github-runner-api.sh", ["registration-token"], apiEnv(), REG_TOKEN);
    assert.equal(result.code, 0, show(result));
    assert.equal(result.stdout.length, REG_TOKEN.length);
    assert.ok(result.stdout === REG_TOKEN, "stdout is not exactly the registration token");
    assert.equal(result.stderr, "");
    assert.deepEqual(
      server.requests.map((r) => `${r.method} ${r.url}`),
      ["POST /repos/acme/widgets/actions/runners/registration-token"],
    );
    assertTokenOnlyInHeader(1);
  });

  it("registration-token uses the organization endpoint for organization scope", async () => {
    const result = await run(
      "github-runner-api.sh",
      ["registration-token"],
      apiEnv({ GITHUB_SCOPE: "organization", GITHUB_REPOSITORY: "" }),
      ORG_REG_TOKEN,
    );
    assert.equal(result.code, 0, show(result));
    assert.ok(result.stdout === ORG_REG_TOKEN, "stdout is not exactly the organization token");
    assert.deepEqual(
      server.requests.map((r) => `${r.method} ${r.url}`),
      ["POST /orgs/acme/actions/runners/registration-token"],
    );
  });

  it("deregister finds the runner by exact name on page 2 and deletes its id", async () => {
    const result = await run(
      "github-runner-api.sh",
      ["deregister"],
      apiEnv({ RUNNER_NAME: "stg-primary-1" }),
    );
    assert.equal(result.code, 0, show(result));
    assert.equal(result.stdout, "github-runner-api: removed runner stg-primary-1 (id 4242)\n");
    assert.deepEqual(
      server.requests.map((r) => `${r.method} ${r.url}`),
      [
        "GET /repos/acme/widgets/actions/runners?per_page=100&page=1",
        "GET /repos/acme/widgets/actions/runners?per_page=100&page=2",
        "DELETE /repos/acme/widgets/actions/runners/4242",
      ],
    );
    assertTokenOnlyInHeader(3);
  });

  it("deregister of an absent runner exits 0 and says there is nothing to remove", async () => {
    const result = await run(
      "github-runner-api.sh",
      ["deregister"],
      apiEnv({ RUNNER_NAME: "stg-primary-9" }),
    );
    assert.equal(result.code, 0, show(result));
    assert.equal(
      result.stdout,
      "github-runner-api: runner stg-primary-9 is not registered; nothing to remove\n",
    );
    assert.deepEqual(
      server.requests.map((r) => r.method),
      ["GET", "GET"],
    );
  });

  it("HTTP 401 fails with a clear message that does not contain the token", async () => {
    for (const sub of ["registration-token", "deregister"]) {
      const result = await run(
        "github-runner-api.sh",
        [sub],
        apiEnv({ GITHUB_TOKEN: WRONG_PAT, RUNNER_NAME: "stg-primary-1" }),
      );
      assert.notEqual(result.code, 0, show(result));
      assert.equal(result.stdout, "");
      assert.match(
        result.stderr,
        /^github-runner-api: .* failed: HTTP 401: Bad credentials: Bearer \[redacted\]/,
      );
      assert.match(result.stderr, /the GitHub token is invalid or expired/);
    }
    assert.equal(server.requests.at(-1)?.headers.authorization, `Bearer ${WRONG_PAT}`);
  });

  it("rejects a missing token, an unknown scope and an unknown subcommand without any request", async () => {
    const missing = await run("github-runner-api.sh", ["registration-token"], apiEnv({ GITHUB_TOKEN: "" }));
    assert.equal(missing.code, 2, show(missing));
    assert.match(missing.stderr, /GITHUB_TOKEN is required/);
    const scope = await run(
      "github-runner-api.sh",
      ["registration-token"],
      apiEnv({ GITHUB_SCOPE: "enterprise" }),
    );
    assert.equal(scope.code, 2, show(scope));
    assert.match(scope.stderr, /GITHUB_SCOPE must be repository or organization/);
    const sub = await run("github-runner-api.sh", ["list"], apiEnv());
    assert.equal(sub.code, 2, show(sub));
    assert.match(sub.stderr, /usage: github-runner-api registration-token\|deregister/);
    assert.equal(server.requests.length, 0);
  });
});

describe("uninstall-runner.sh", () => {
  let root = "";
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "rf-uninstall-"));
  });
  after(() => {
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  it("exits 0 when nothing is installed", async () => {
    const home = path.join(root, "empty", "actions-runner");
    fs.mkdirSync(home, { recursive: true });
    const result = await run("uninstall-runner.sh", [], {
      PATH: SYSTEM_PATH,
      RUNNER_HOME: home,
      RUNNER_FLEET_ETC: path.join(root, "empty", "etc"),
    });
    assert.equal(result.code, 0, show(result));
    assert.match(result.stdout, /no runner installed in .*; nothing to stop/);
    assert.match(result.stdout, /removed 0 local runner configuration file\(s\)/);
  });

  it("stops and uninstalls the service and removes the local runner configuration", async function () {
    if (!IS_ROOT) {
      console.log("    skipped: the stub svc.sh, like the real one, needs root");
      this.skip();
    }
    const home = path.join(root, "installed", "actions-runner");
    const etc = path.join(root, "installed", "etc");
    const systemdDir = path.join(root, "installed", "systemd");
    const stubLog = path.join(root, "installed", "stub.log");
    fs.mkdirSync(home, { recursive: true });
    fs.mkdirSync(etc);
    fs.mkdirSync(systemdDir);
    const tarball = buildRunnerTarball(root, "2.321.0");
    const tar = spawnSync("tar", ["xzf", tarball.file, "-C", home], { encoding: "utf8" });
    assert.equal(tar.status, 0, tar.stderr);
    const unit = "actions.runner.stub-stg-primary-1.service";
    for (const [f, content] of Object.entries({
      ".runner": '{"agentName":"stg-primary-1"}\n',
      ".credentials": "{}\n",
      ".credentials_rsaparams": "{}\n",
      ".runner-fleet-fingerprint": "abc\n",
      ".service": `${unit}\n`,
    })) {
      fs.writeFileSync(path.join(home, f), content);
    }
    fs.writeFileSync(path.join(etc, "runner.env"), "RUNNER_NAME=stg-primary-1\n");
    fs.writeFileSync(path.join(systemdDir, `${unit}.enabled`), "");
    fs.writeFileSync(path.join(systemdDir, `${unit}.active`), "");

    const result = await run("uninstall-runner.sh", [], {
      PATH: SYSTEM_PATH,
      RF_STUB_LOG: stubLog,
      RF_SYSTEMD_DIR: systemdDir,
      RUNNER_HOME: home,
      RUNNER_FLEET_ETC: etc,
    });
    assert.equal(result.code, 0, show(result));
    assert.deepEqual(
      readStubLog(stubLog).map((c) => [c.script, c.user, ...c.args].join(" ")),
      ["svc.sh root stop", "svc.sh root uninstall"],
    );
    assert.deepEqual(fs.readdirSync(systemdDir), []);
    for (const f of [
      ".runner",
      ".credentials",
      ".credentials_rsaparams",
      ".runner-fleet-fingerprint",
      ".service",
    ]) {
      assert.ok(!fs.existsSync(path.join(home, f)), `${f} left behind`);
    }
    assert.ok(!fs.existsSync(path.join(etc, "runner.env")), "runner.env left behind");
    assert.ok(fs.existsSync(path.join(home, "config.sh")), "binaries removed");
    assert.match(result.stdout, /removed 5 local runner configuration file\(s\)/);

    const again = await run("uninstall-runner.sh", [], {
      PATH: SYSTEM_PATH,
      RF_STUB_LOG: stubLog,
      RF_SYSTEMD_DIR: systemdDir,
      RUNNER_HOME: home,
      RUNNER_FLEET_ETC: etc,
    });
    assert.equal(again.code, 0, `second uninstall must succeed: ${show(again)}`);
    assert.match(again.stderr, /warning: svc\.sh stop failed; continuing/);
  });
});
