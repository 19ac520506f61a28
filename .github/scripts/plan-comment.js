// Posts a pull request's offline desired-state diff as ONE comment, updated in place on every run.
//
// Called through actions/github-script from .github/workflows/pr-comment.yml, a workflow_run
// workflow that runs the default branch's code only. Its input, the `plan-diff` artifact, was
// written by the pull request's own (untrusted) code, so it is handled as data:
// - `pr-number` must be a plain number, and that pull request's head commit and head repository
//   must be the ones of the workflow run that uploaded the artifact (taken from the event, which
//   GitHub writes), so a tampered artifact cannot aim the comment at another pull request;
// - `comment.md` is size-capped and only ever becomes the body of that one comment;
// - only comments written by github-actions[bot] that start with the marker are ever edited.
"use strict";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const fs = require("fs");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const path = require("path");

const MARKER = "<!-- runner-fleet-plan -->";
/** GitHub rejects comment bodies longer than 65536 characters. */
const MAX_BODY = 65536;
/** Bytes read from an artifact file at most; larger files are rejected, not half-read. */
const MAX_ARTIFACT_FILE = 1024 * 1024;
const BOT_LOGIN = "github-actions[bot]";
const TRUNCATED =
  "\n\n_Truncated: the complete diff is in the summary of the pull request's workflow run._\n";

function parsePullNumber(text) {
  const value = String(text).trim();
  if (!/^[1-9][0-9]{0,9}$/.test(value)) {
    throw new Error(`pr-number is not a pull request number: ${JSON.stringify(value.slice(0, 40))}`);
  }
  return Number(value);
}

/** The comment body: the marker line, then the diff with any copy of the marker removed, capped. */
function buildBody(markdown) {
  const head = `${MARKER}\n`;
  let text = String(markdown).split(MARKER).join("");
  if (head.length + text.length > MAX_BODY) {
    text = text.slice(0, MAX_BODY - head.length - TRUNCATED.length) + TRUNCATED;
  }
  return head + text;
}

/** True for a plan comment this workflow wrote earlier (never a human's comment quoting the marker). */
function isPlanComment(comment) {
  return (
    Boolean(comment.user) &&
    comment.user.login === BOT_LOGIN &&
    comment.user.type === "Bot" &&
    typeof comment.body === "string" &&
    comment.body.startsWith(MARKER)
  );
}

function readCapped(file) {
  const size = fs.statSync(file).size;
  if (size > MAX_ARTIFACT_FILE) {
    throw new Error(`${path.basename(file)} is ${size} bytes, more than ${MAX_ARTIFACT_FILE}`);
  }
  return fs.readFileSync(file, "utf8");
}

/** Reads the downloaded `plan-diff` artifact: `pr-number` and `comment.md`. */
function readPlanArtifact(dir) {
  return {
    prNumberText: readCapped(path.join(dir, "pr-number")),
    markdown: readCapped(path.join(dir, "comment.md")),
  };
}

/**
 * Creates or updates the plan comment on the pull request the workflow run belongs to.
 * Returns what it did: created, updated, unchanged, or skipped (with the reason).
 */
async function upsertPlanComment({ github, owner, repo, workflowRun, prNumberText, markdown, log }) {
  const info = log ?? (() => undefined);
  const pullNumber = parsePullNumber(prNumberText);
  const { data: pr } = await github.rest.pulls.get({ owner, repo, pull_number: pullNumber });
  const runRepo = workflowRun.head_repository ? workflowRun.head_repository.full_name : undefined;
  if (!pr.head.repo || pr.head.repo.full_name !== runRepo) {
    throw new Error(
      `pull request #${pullNumber} comes from ${pr.head.repo ? pr.head.repo.full_name : "a deleted repository"}, ` +
        `the workflow run from ${runRepo}: refusing to comment`,
    );
  }
  if (pr.head.sha !== workflowRun.head_sha) {
    const reason = `head of #${pullNumber} is now ${pr.head.sha}, the diff is for ${workflowRun.head_sha}`;
    info(`skipped: ${reason}; the run for the new head posts its own diff`);
    return { action: "skipped", reason };
  }

  const body = buildBody(markdown);
  const comments = await github.paginate(github.rest.issues.listComments, {
    owner,
    repo,
    issue_number: pullNumber,
    per_page: 100,
  });
  const mine = comments.filter(isPlanComment);
  // Two runs racing could each have created one: keep the oldest, remove the others.
  for (const extra of mine.slice(1)) {
    await github.rest.issues.deleteComment({ owner, repo, comment_id: extra.id });
    info(`deleted duplicate plan comment ${extra.id}`);
  }
  if (mine.length === 0) {
    const { data } = await github.rest.issues.createComment({ owner, repo, issue_number: pullNumber, body });
    info(`created plan comment ${data.id} on #${pullNumber}`);
    return { action: "created", commentId: data.id };
  }
  const current = mine[0];
  if (current.body === body) {
    info(`plan comment ${current.id} on #${pullNumber} is up to date`);
    return { action: "unchanged", commentId: current.id };
  }
  await github.rest.issues.updateComment({ owner, repo, comment_id: current.id, body });
  info(`updated plan comment ${current.id} on #${pullNumber}`);
  return { action: "updated", commentId: current.id };
}

module.exports = {
  MARKER,
  MAX_BODY,
  MAX_ARTIFACT_FILE,
  BOT_LOGIN,
  parsePullNumber,
  buildBody,
  isPlanComment,
  readPlanArtifact,
  upsertPlanComment,
};
