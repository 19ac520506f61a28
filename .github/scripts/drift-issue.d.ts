// Types of drift-issue.js for the tests (test/workflows.test.ts); the workflow runs the .js file.
import type { GitHubClient } from "./github-client";

export const LABEL: string;

export interface RunInfo {
  id: number | string;
  url: string;
  sha: string;
  time: string;
}

export interface IssueLike {
  number: number;
  title: string;
  pull_request?: unknown;
}

export type DriftResult = { action: "opened" | "updated" | "closed"; number: number } | { action: "none" };

export function driftTitle(stack: string): string;
export function findDriftIssue(args: {
  github: GitHubClient;
  owner: string;
  repo: string;
  stack: string;
}): Promise<IssueLike | undefined>;
export function reportDrift(args: {
  github: GitHubClient;
  owner: string;
  repo: string;
  stack: string;
  drifted: boolean;
  run: RunInfo;
  log?: (message: string) => void;
}): Promise<DriftResult>;
