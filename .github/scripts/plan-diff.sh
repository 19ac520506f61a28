#!/usr/bin/env bash
# Writes the pull request's offline desired-state diff as Markdown: one section per stack, each
# produced by `npm run plan -- --stack <stack> --diff <base-ref>` (mock engine, no credentials, no
# network). Runs in the unprivileged pull_request job; .github/workflows/pr-comment.yml posts the
# file as the pull request comment.
#
# Usage: plan-diff.sh <base-ref> <out-file> <stack>...
# Exit 0 when every stack planned; 1 when any failed (its section then shows the plan's stderr,
# which for invalid configuration lists every problem with its path); 64 on wrong usage.
# Backticks in the printf formats are Markdown code spans, not command substitutions.
# shellcheck disable=SC2016
set -uo pipefail

if [ "$#" -lt 3 ]; then
  echo "usage: $0 <base-ref> <out-file> <stack>..." >&2
  exit 64
fi
base=$1
out=$2
shift 2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

status=0
{
  printf '## Offline desired-state diff\n\n'
  printf 'What the program declares for each stack compared with `%s`, computed in the mock engine ' "$base"
  printf 'without credentials (`npm run plan -- --stack <stack> --diff %s`). ' "$base"
  printf 'It is not a `pulumi preview` of the live infrastructure.\n'
  if [ -n "${HEAD_SHA:-}" ]; then
    printf '\nHead commit: %s\n' "$HEAD_SHA"
  fi
  for stack in "$@"; do
    printf '\n'
    if npm run --silent plan -- --stack "$stack" --diff "$base" >"$tmp/out" 2>"$tmp/err"; then
      cat "$tmp/out"
    else
      rc=$?
      status=1
      printf '### runner-fleet `%s`: plan failed (exit %d)\n\n' "$stack" "$rc"
      if [ "$rc" -eq 2 ]; then
        printf 'The stack configuration is invalid:\n\n'
      fi
      printf '````text\n'
      cat "$tmp/err"
      printf '\n````\n'
    fi
  done
} >"$out"

cat "$out"
exit "$status"
