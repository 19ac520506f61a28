// install-exporter.sh run for real against a scratch root, with systemctl, apt-get and nft stubs that log.
import { strict as assert } from "assert";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const SCRIPT = path.resolve(__dirname, "../assets/monitoring/install-exporter.sh");
const MONITORING = path.resolve(__dirname, "../assets/monitoring");

describe("install-exporter.sh", () => {
  let dir: string;
  let root: string;
  let src: string;
  let log: string;
  let enabledFlag: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "exporter-"));
    root = path.join(dir, "root");
    src = path.join(dir, "src");
    log = path.join(dir, "calls.log");
    enabledFlag = path.join(dir, "timer-enabled");
    fs.mkdirSync(src);
    for (const f of ["runner-metrics.sh", "runner-metrics.service", "runner-metrics.timer"]) {
      fs.copyFileSync(path.join(MONITORING, f), path.join(src, f));
    }
    const stub = (name: string, body: string) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, `#!/bin/sh\necho "${name} $*" >> "${log}"\n${body}\n`, { mode: 0o755 });
      return p;
    };
    stub(
      "systemctl",
      `case "$1" in is-enabled) [ -f "${enabledFlag}" ];; enable) touch "${enabledFlag}";; esac`,
    );
    stub("apt-get", "exit 0");
    stub("nft", "exit 0");
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  function run(env: Record<string, string> = {}) {
    fs.writeFileSync(log, "");
    const r = spawnSync("bash", [SCRIPT], {
      encoding: "utf8",
      env: {
        PATH: process.env.PATH ?? "",
        EXPORTER_PORT: "9100",
        SCRAPE_FROM: "10.40.0.5",
        SOURCE_DIR: src,
        RUNNER_FLEET_ROOT: root,
        RUNNER_FLEET_SYSTEMCTL: path.join(dir, "systemctl"),
        RUNNER_FLEET_APT: path.join(dir, "apt-get"),
        RUNNER_FLEET_NFT: path.join(dir, "nft"),
        ...env,
      },
    });
    const calls = fs
      .readFileSync(log, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => l.replace(dir + "/", ""));
    return { ...r, calls };
  }

  it("passes shellcheck", () => {
    const r = spawnSync("shellcheck", ["-x", SCRIPT], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it("rejects a bad port or scrape source before writing anything", () => {
    const r = run({ EXPORTER_PORT: "80", SCRAPE_FROM: "prometheus" });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /install-exporter: EXPORTER_PORT must be a port number 1024-65535/);
    assert.equal(fs.existsSync(root), false);
  });

  it("first run installs units, metrics script and a firewall limited to the scrape source", () => {
    const r = run();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /install-exporter: converged \(port 9100, scrape from 10\.40\.0\.5\)/);
    assert.equal(
      fs.readFileSync(path.join(root, "etc/default/prometheus-node-exporter"), "utf8"),
      'ARGS="--web.listen-address=:9100 --collector.textfile.directory=/var/lib/prometheus/node-exporter"\n',
    );
    const installed = path.join(root, "usr/local/lib/runner-fleet/runner-metrics.sh");
    assert.equal(fs.statSync(installed).mode & 0o777, 0o755);
    assert.equal(
      fs.readFileSync(installed, "utf8"),
      fs.readFileSync(path.join(src, "runner-metrics.sh"), "utf8"),
    );
    const nft = fs.readFileSync(path.join(root, "etc/runner-fleet/exporter.nft"), "utf8");
    assert.match(nft, /tcp dport 9100 ip saddr != 10\.40\.0\.5 drop/);
    assert.deepEqual(r.calls, [
      "systemctl restart prometheus-node-exporter",
      "systemctl daemon-reload",
      "systemctl is-enabled --quiet runner-metrics.timer",
      "systemctl enable --now runner-metrics.timer",
      "nft -f root/etc/runner-fleet/exporter.nft",
      "systemctl daemon-reload",
      "systemctl enable runner-fleet-exporter-firewall.service",
    ]);
  });

  it("a second run changes nothing", () => {
    const r = run();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "install-exporter: already converged");
    assert.deepEqual(r.calls, ["systemctl is-enabled --quiet runner-metrics.timer"]);
  });

  it("a new port restarts node_exporter and reloads the firewall, nothing else", () => {
    const r = run({ EXPORTER_PORT: "9200" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.calls, [
      "systemctl restart prometheus-node-exporter",
      "systemctl is-enabled --quiet runner-metrics.timer",
      "nft -f root/etc/runner-fleet/exporter.nft",
    ]);
    assert.match(
      fs.readFileSync(path.join(root, "etc/runner-fleet/exporter.nft"), "utf8"),
      /tcp dport 9200 /,
    );
  });
});
