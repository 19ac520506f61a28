// Types of plan-comment.js for the tests (test/workflows.test.ts); the workflow runs the .js file.
import type { GitHubClient } from "./github-client";

export const MARKER: string;
export const MAX_BODY: number;
export const MAX_ARTIFACT_FILE: number;
export const BOT_LOGIN: string;

export interface WorkflowRunRef {
  head_sha: string;
  head_repository: { full_name: string } | null;
}

export interface CommentLike {
  id: number;
  body?: string | null;
  user: { login: string; type: string } | null;
}

export type PlanCommentResult =
  { action: "created" | "updated" | "unchanged"; commentId: number } | { action: "skipped"; reason: string };

export function parsePullNumber(text: string): number;
export function buildBody(markdown: string): string;
export function isPlanComment(comment: CommentLike): boolean;
export function readPlanArtifact(dir: string): { prNumberText: string; markdown: string };
export function upsertPlanComment(args: {
  github: GitHubClient;
  owner: string;
  repo: string;
  workflowRun: WorkflowRunRef;
  prNumberText: string;
  markdown: string;
  log?: (message: string) => void;
}): Promise<PlanCommentResult>;
