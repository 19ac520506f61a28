// Keeps ONE open issue per stack about drift, called through actions/github-script from
// .github/workflows/drift.yml after `pulumi preview --refresh --expect-no-changes`:
// - check failed, no open issue: open "Drift detected in stack <stack>" with the label `drift`;
// - check failed, issue open: comment on it with the new run (never a second issue);
// - check passed, issue open: comment that the stack is clean again and close it.
// An open issue is found by its exact title among open issues carrying the label.
"use strict";

const LABEL = "drift";
const LABEL_COLOR = "d93f0b";
const LABEL_DESCRIPTION = "A stack's live infrastructure differs from what the program declares";

function driftTitle(stack) {
  return `Drift detected in stack ${stack}`;
}

function runLine(run) {
  return `[workflow run ${run.id}](${run.url}) at ${run.time} on commit \`${run.sha}\``;
}

function openingBody(stack, run) {
  return [
    `The scheduled drift check found that stack \`${stack}\` no longer matches the program.`,
    "",
    `- First detected: ${runLine(run)}`,
    `- Check: \`pulumi preview --refresh --expect-no-changes --stack ${stack}\`; the run's summary shows the`,
    "  refreshed preview (secret values are masked by Pulumi). A failing check can also mean the preview",
    "  itself errored (backend, credentials, provider): the run's log tells which.",
    "",
    "What to do:",
    `1. Reproduce: \`pulumi preview --refresh --diff --stack ${stack}\`.`,
    "2. Either bring the infrastructure back to the declared state (`pulumi up`, a deliberate apply of the",
    "   current main) or change the program and stack configuration to declare what you want to keep, then",
    "   merge that change.",
    "3. Nothing else: the next clean drift check comments here and closes this issue.",
    "",
    "This issue is managed by `.github/workflows/drift.yml`; keep its title, it is how the check finds it.",
  ].join("\n");
}

async function ensureLabel(github, owner, repo) {
  try {
    await github.rest.issues.getLabel({ owner, repo, name: LABEL });
  } catch (err) {
    if (!err || err.status !== 404) throw err;
    try {
      await github.rest.issues.createLabel({
        owner,
        repo,
        name: LABEL,
        color: LABEL_COLOR,
        description: LABEL_DESCRIPTION,
      });
    } catch (createErr) {
      // 422: created meanwhile by the other stack's job.
      if (!createErr || createErr.status !== 422) throw createErr;
    }
  }
}

/** The open drift issue of a stack, or undefined. */
async function findDriftIssue({ github, owner, repo, stack }) {
  const issues = await github.paginate(github.rest.issues.listForRepo, {
    owner,
    repo,
    state: "open",
    labels: LABEL,
    per_page: 100,
  });
  const title = driftTitle(stack);
  return issues.find((issue) => !issue.pull_request && issue.title === title);
}

/**
 * Opens, updates or closes the stack's drift issue. `drifted` is the outcome of the check.
 * `run`: { id, url, sha, time } of the workflow run. Returns { action, number? }.
 */
async function reportDrift({ github, owner, repo, stack, drifted, run, log }) {
  const info = log ?? (() => undefined);
  const existing = await findDriftIssue({ github, owner, repo, stack });
  if (drifted) {
    if (existing) {
      await github.rest.issues.createComment({
        owner,
        repo,
        issue_number: existing.number,
        body: `Still drifting: ${runLine(run)}.`,
      });
      info(`drift in ${stack}: commented on #${existing.number}`);
      return { action: "updated", number: existing.number };
    }
    await ensureLabel(github, owner, repo);
    const { data } = await github.rest.issues.create({
      owner,
      repo,
      title: driftTitle(stack),
      body: openingBody(stack, run),
      labels: [LABEL],
    });
    info(`drift in ${stack}: opened #${data.number}`);
    return { action: "opened", number: data.number };
  }
  if (existing) {
    await github.rest.issues.createComment({
      owner,
      repo,
      issue_number: existing.number,
      body: `No drift any more: ${runLine(run)} found stack \`${stack}\` matching the program. Closing.`,
    });
    await github.rest.issues.update({
      owner,
      repo,
      issue_number: existing.number,
      state: "closed",
      state_reason: "completed",
    });
    info(`no drift in ${stack}: closed #${existing.number}`);
    return { action: "closed", number: existing.number };
  }
  info(`no drift in ${stack}`);
  return { action: "none" };
}

module.exports = { LABEL, driftTitle, findDriftIssue, reportDrift };
