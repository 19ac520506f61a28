#!/usr/bin/env bash
# github-runner-api.sh: the two GitHub REST calls the fleet needs, run on the operator/CI machine
# (a Pulumi local command).
#
#   github-runner-api.sh registration-token   print a fresh runner registration token on stdout
#                                             (the token only, no trailing newline)
#   github-runner-api.sh deregister           delete the runner named RUNNER_NAME; exit 0 when
#                                             no such runner is registered
#
# Environment:
#   GITHUB_TOKEN       secret PAT / GitHub App installation token                       (required)
#   GITHUB_API_URL     API base URL                             (default https://api.github.com)
#   GITHUB_SCOPE       repository | organization                                        (required)
#   GITHUB_OWNER       repository owner, or the organization                            (required)
#   GITHUB_REPOSITORY  repository name                              (required for repository scope)
#   RUNNER_NAME        runner to remove                                    (required for deregister)
#
# The token never reaches a command line: curl reads its Authorization header from a config on
# stdin (`--config -`), fed by bash's builtin printf through a pipe. Nothing touches the disk (a
# here-doc would, on bash < 5.1, and a header file would need cleanup on every exit path).
# JSON is parsed with node: this script runs where the Pulumi TypeScript program runs, so node
# is always there, while jq and python3 are not guaranteed on an operator or CI machine.
set -euo pipefail
shopt -s inherit_errexit

readonly PROG=github-runner-api

die() {
  printf '%s: %s\n' "$PROG" "$*" >&2
  exit 1
}
usage() {
  printf 'usage: %s registration-token|deregister (configured through environment variables)\n' "$PROG" >&2
  exit 2
}

subcommand=${1:-}
case $subcommand in
  registration-token | deregister) ;;
  *) usage ;;
esac

GITHUB_TOKEN=${GITHUB_TOKEN:-}
GITHUB_API_URL=${GITHUB_API_URL:-https://api.github.com}
GITHUB_API_URL=${GITHUB_API_URL%/}
GITHUB_SCOPE=${GITHUB_SCOPE:-}
GITHUB_OWNER=${GITHUB_OWNER:-}
GITHUB_REPOSITORY=${GITHUB_REPOSITORY:-}
RUNNER_NAME=${RUNNER_NAME:-}

errors=()
[[ -n $GITHUB_TOKEN ]] || errors+=("GITHUB_TOKEN is required")
[[ $GITHUB_TOKEN =~ ^[^[:cntrl:][:space:]\"\\]*$ ]] ||
  errors+=("GITHUB_TOKEN contains whitespace, quotes or backslashes; not a GitHub token")
[[ $GITHUB_API_URL =~ ^https?://[^[:space:]]+$ ]] || errors+=("GITHUB_API_URL must be an http(s) URL")
[[ $GITHUB_OWNER =~ ^[A-Za-z0-9._-]+$ ]] || errors+=("GITHUB_OWNER must be a GitHub account name (got '${GITHUB_OWNER}')")
case $GITHUB_SCOPE in
  repository)
    [[ $GITHUB_REPOSITORY =~ ^[A-Za-z0-9._-]+$ ]] ||
      errors+=("GITHUB_REPOSITORY must be a repository name for repository scope (got '${GITHUB_REPOSITORY}')")
    base="/repos/${GITHUB_OWNER}/${GITHUB_REPOSITORY}/actions/runners"
    ;;
  organization) base="/orgs/${GITHUB_OWNER}/actions/runners" ;;
  *) errors+=("GITHUB_SCOPE must be repository or organization (got '${GITHUB_SCOPE}')") ;;
esac
if [[ $subcommand == deregister ]]; then
  [[ $RUNNER_NAME =~ ^[^[:cntrl:]]+$ ]] || errors+=("RUNNER_NAME is required for deregister")
fi
if ((${#errors[@]} > 0)); then
  for e in "${errors[@]}"; do printf '%s: %s\n' "$PROG" "$e" >&2; done
  exit 2
fi
command -v curl >/dev/null || die "curl not found"
command -v node >/dev/null || die "node not found"

# node -e program: reads JSON on stdin. Modes:
#   token            print .token (no newline)
#   message          print .message, if any
#   find <name>      print "<runners on this page> <total_count> <id of runner named name or ->"
# shellcheck disable=SC2016 # JavaScript, not shell
readonly JSON_JS='
let s = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => (s += c));
process.stdin.on("end", () => {
  const [mode, name] = process.argv.slice(1);
  let d;
  try { d = JSON.parse(s); } catch { process.stderr.write("response is not JSON\n"); process.exit(3); }
  if (mode === "token") {
    if (typeof d.token !== "string" || d.token === "") { process.stderr.write("response has no token\n"); process.exit(3); }
    process.stdout.write(d.token);
  } else if (mode === "message") {
    if (d && typeof d.message === "string") process.stdout.write(d.message.replace(/[\r\n]+/g, " "));
  } else if (mode === "find") {
    if (!d || !Array.isArray(d.runners)) { process.stderr.write("response has no runners list\n"); process.exit(3); }
    const hit = d.runners.find((r) => r && r.name === name);
    const total = Number.isInteger(d.total_count) ? d.total_count : -1;
    process.stdout.write(`${d.runners.length} ${total} ${hit ? hit.id : "-"}`);
  }
});'
json() { node -e "$JSON_JS" -- "$@"; }

# api <METHOD> <path>: sets $status and $body. Never fails on HTTP errors; curl/transport errors
# abort the script.
status=""
body=""
api() {
  local method=$1 path=$2 out
  out=$(printf 'header = "Authorization: Bearer %s"\n' "$GITHUB_TOKEN" |
    curl --config - --silent --show-error --location --retry 3 --retry-delay 2 --connect-timeout 15 \
      --max-time 60 --request "$method" --user-agent runner-fleet \
      --header 'Accept: application/vnd.github+json' --header 'X-GitHub-Api-Version: 2022-11-28' \
      --write-out '\n%{http_code}' "${GITHUB_API_URL}${path}") ||
    die "$method ${GITHUB_API_URL}${path}: request failed (curl exit $?)"
  status=${out##*$'\n'}
  body=${out%$'\n'*}
}

fail_http() { # fail_http <what>
  local msg
  msg=$(printf '%s' "$body" | json message 2>/dev/null || true)
  msg=${msg//"$GITHUB_TOKEN"/"[redacted]"}
  local hint=""
  case $status in
    401) hint=" (the GitHub token is invalid or expired)" ;;
    403) hint=" (the GitHub token lacks permission: repository Administration or organization self-hosted runners, read and write)" ;;
    404) hint=" (no such repository/organization, or the token cannot see it)" ;;
  esac
  die "$1 failed: HTTP ${status}${msg:+: $msg}$hint"
}

case $subcommand in
  registration-token)
    api POST "${base}/registration-token"
    [[ $status == 201 || $status == 200 ]] || fail_http "POST ${base}/registration-token"
    token=$(printf '%s' "$body" | json token) || die "POST ${base}/registration-token: unexpected response"
    printf '%s' "$token"
    ;;
  deregister)
    id=""
    page=1
    while :; do
      api GET "${base}?per_page=100&page=${page}"
      [[ $status == 200 ]] || fail_http "GET ${base}?per_page=100&page=${page}"
      found=$(printf '%s' "$body" | json find "$RUNNER_NAME") || die "GET ${base}: unexpected response"
      read -r count total hit <<<"$found"
      if [[ $hit != - ]]; then
        id=$hit
        break
      fi
      if ((count < 100)) || ((total >= 0 && page * 100 >= total)) || ((page >= 1000)); then
        break
      fi
      page=$((page + 1))
    done
    if [[ -z $id ]]; then
      printf '%s: runner %s is not registered; nothing to remove\n' "$PROG" "$RUNNER_NAME"
      exit 0
    fi
    api DELETE "${base}/${id}"
    case $status in
      204 | 200) printf '%s: removed runner %s (id %s)\n' "$PROG" "$RUNNER_NAME" "$id" ;;
      404) printf '%s: runner %s (id %s) was already removed\n' "$PROG" "$RUNNER_NAME" "$id" ;;
      *) fail_http "DELETE ${base}/${id} (runner ${RUNNER_NAME})" ;;
    esac
    ;;
esac
