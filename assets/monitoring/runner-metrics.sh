#!/usr/bin/env bash
# runner-metrics.sh: GitHub Actions runner metrics for node_exporter's textfile collector.
#
# Runs as root from runner-metrics.timer (every 30 s) on each runner VM. Reads the runner's
# description from $RUNNER_FLEET_ETC/runner.env and writes $TEXTFILE_DIR/github_runner.prom
# atomically (temp file in the same directory, then mv). The scrape adds the target labels
# runner, role, stack and node, so no metric here carries them.
#
# Environment (defaults in brackets):
#   RUNNER_FLEET_ETC        directory holding runner.env                [/etc/runner-fleet]
#   TEXTFILE_DIR            node_exporter textfile collector directory  [/var/lib/prometheus/node-exporter]
#   RUNNER_FLEET_STATE_DIR  job counter cache, survives log rotation    [/var/lib/runner-fleet]
#   RUNNER_FLEET_SYSTEMCTL  systemctl command (test seam)               [systemctl]
#   RUNNER_FLEET_PGREP      pgrep command (test seam)                   [pgrep]
#
# runner.env keys (shell-style KEY=value; the file is parsed, never sourced):
#   RUNNER_NAME, RUNNER_VERSION, RUNNER_LABELS (comma-separated), RUNNER_HOME [/opt/actions-runner],
#   RUNNER_WORK_DIR [$RUNNER_HOME/_work; relative paths are taken relative to RUNNER_HOME],
#   RUNNER_PINNED_VERSION [= RUNNER_VERSION].
#
# Job results come from the runner's Worker diagnostic logs, $RUNNER_HOME/_diag/Worker_*.log.
# actions/runner (src/Runner.Worker/JobRunner.cs) writes, once per job, through its trace
# listener (src/Runner.Common/HostTraceListener.cs, header "[{UtcNow:u} INFO {source}] "):
#   [2025-01-01 00:00:05Z INFO JobRunner] Job result after all job steps finish: Failed
# The value is a TaskResult name: Succeeded, SucceededWithIssues, Failed, Canceled, Skipped,
# Abandoned. Counted as: Succeeded|SucceededWithIssues -> succeeded, Failed|Abandoned -> failed,
# Canceled -> cancelled; anything else is not counted. Only lines carrying that exact header are
# counted, so the same words inside a logged job message (a workflow script) do not count.
# github_runner_last_job_end_timestamp_seconds is the PARSED timestamp of the newest such line
# (file names sort chronologically), not a file mtime: the newest Worker log usually belongs to a
# job that is still running, and its mtime moves with every line written.
#
# The runner deletes diag logs after 30 days and pages them at 8 MB, so the raw line count can
# shrink. Counts of files that disappeared are kept in $RUNNER_FLEET_STATE_DIR/jobs.state so that
# github_runner_jobs_total never goes down (a drop would read as a counter reset and inflate
# increase()). The same file caches per-log counts keyed by size and mtime, so unchanged logs are
# not re-read every 30 s.
#
# Exits 0 when the runner is not installed (up=0, busy from pgrep, versions empty, match=0).

set -euo pipefail
umask 022

etc_dir=${RUNNER_FLEET_ETC:-/etc/runner-fleet}
textfile_dir=${TEXTFILE_DIR:-/var/lib/prometheus/node-exporter}
state_dir=${RUNNER_FLEET_STATE_DIR:-/var/lib/runner-fleet}
systemctl_cmd=${RUNNER_FLEET_SYSTEMCTL:-systemctl}
pgrep_cmd=${RUNNER_FLEET_PGREP:-pgrep}

out_file="$textfile_dir/github_runner.prom"
state_file="$state_dir/jobs.state"

tmp_out=""
tmp_state=""
# shellcheck disable=SC2317 # invoked through the EXIT trap
cleanup() {
  [[ -n $tmp_out ]] && rm -f -- "$tmp_out"
  [[ -n $tmp_state ]] && rm -f -- "$tmp_state"
  return 0
}
trap cleanup EXIT

log() { printf 'runner-metrics: %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
# runner.env
declare -A cfg=(
  [RUNNER_NAME]=""
  [RUNNER_VERSION]=""
  [RUNNER_LABELS]=""
  [RUNNER_HOME]=""
  [RUNNER_WORK_DIR]=""
  [RUNNER_PINNED_VERSION]=""
)

read_env_file() {
  local file=$1 line key value
  [[ -r $file ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key=${BASH_REMATCH[2]}
    value=${BASH_REMATCH[3]}
    if [[ $value =~ ^\"(.*)\"[[:space:]]*$ ]]; then
      value=${BASH_REMATCH[1]}
    elif [[ $value =~ ^\'(.*)\'[[:space:]]*$ ]]; then
      value=${BASH_REMATCH[1]}
    else
      # Unquoted: drop an inline comment and surrounding blanks.
      value=${value%%[[:space:]]#*}
      value=${value#"${value%%[![:space:]]*}"}
      value=${value%"${value##*[![:space:]]}"}
    fi
    if [[ -v "cfg[$key]" ]]; then
      cfg[$key]=$value
    fi
  done <"$file"
}

read_env_file "$etc_dir/runner.env"

runner_version=${cfg[RUNNER_VERSION]}
pinned_version=${cfg[RUNNER_PINNED_VERSION]:-$runner_version}
runner_home=${cfg[RUNNER_HOME]:-/opt/actions-runner}
work_dir=${cfg[RUNNER_WORK_DIR]:-_work}
[[ $work_dir == /* ]] || work_dir="$runner_home/$work_dir"

# ---------------------------------------------------------------------------------------------
# Text exposition format helpers.
escape_label_value() {
  local v=$1
  v=${v//\\/\\\\}
  v=${v//\"/\\\"}
  v=${v//$'\n'/\\n}
  printf '%s' "$v"
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# ---------------------------------------------------------------------------------------------
# Service state: the unit name is what svc.sh wrote into $RUNNER_HOME/.service.
runner_up=0
if [[ -r "$runner_home/.service" ]]; then
  unit=$(head -n 1 -- "$runner_home/.service" || true)
  unit=${unit//[[:space:]]/}
  if [[ -n $unit && $unit != -* && $unit != */* ]]; then
    if "$systemctl_cmd" is-active "$unit" >/dev/null 2>&1; then
      runner_up=1
    fi
  fi
fi

runner_busy=0
if "$pgrep_cmd" -f Runner.Worker >/dev/null 2>&1; then
  runner_busy=1
fi

version_match=0
if [[ -n $runner_version && $runner_version == "$pinned_version" ]]; then
  version_match=1
fi

# ---------------------------------------------------------------------------------------------
# Free space of the filesystem holding the work directory (nearest existing ancestor if the
# directory does not exist yet). Not emitted when it cannot be determined: a made-up 0 would
# page someone about a full disk.
work_free=""
probe=$work_dir
while [[ ! -d $probe && $probe != / && -n $probe ]]; do
  probe=$(dirname -- "$probe")
done
if fs=$(stat -f -c '%a %S' -- "$probe" 2>/dev/null); then
  read -r avail_blocks block_size <<<"$fs"
  if is_uint "$avail_blocks" && is_uint "$block_size"; then
    work_free=$((avail_blocks * block_size))
  fi
fi

# ---------------------------------------------------------------------------------------------
# Job results from _diag/Worker_*.log, with the per-file cache and retired totals in jobs.state.
#
# jobs.state lines (tab-separated):
#   retired <succeeded> <failed> <cancelled>
#   last_job_end <epoch>
#   file <name> <size> <mtime> <succeeded> <failed> <cancelled> <last result epoch or 0>
declare -A st_size=() st_mtime=() st_s=() st_f=() st_c=() st_ts=()
retired_s=0 retired_f=0 retired_c=0 prev_last_end=0

state_ok=0
if mkdir -p -- "$state_dir" 2>/dev/null && [[ -w $state_dir ]]; then
  state_ok=1
  # Serialise concurrent runs (timer plus a manual run); the loser waits briefly, then skips.
  exec 9>>"$state_dir/.lock"
  if ! flock -w 20 9; then
    log "another run holds $state_dir/.lock; skipping"
    exit 0
  fi
else
  log "state directory $state_dir is not writable; job counters restart with the logs"
fi

if ((state_ok)) && [[ -r $state_file ]]; then
  while IFS=$'\t' read -r kind a b c d e f g || [[ -n $kind ]]; do
    case $kind in
      retired)
        if is_uint "$a" && is_uint "$b" && is_uint "$c"; then
          retired_s=$a retired_f=$b retired_c=$c
        fi
        ;;
      last_job_end)
        is_uint "$a" && prev_last_end=$a
        ;;
      file)
        if [[ $a == Worker_*.log && $a != */* ]] && is_uint "$b" && is_uint "$c" && is_uint "$d" &&
          is_uint "$e" && is_uint "$f" && is_uint "$g"; then
          st_size[$a]=$b st_mtime[$a]=$c st_s[$a]=$d st_f[$a]=$e st_c[$a]=$f st_ts[$a]=$g
        fi
        ;;
    esac
  done <"$state_file"
fi

# Prints "<succeeded> <failed> <cancelled> <last timestamp or ->" for one Worker log.
# Portable awk (Debian's default is mawk): fixed-position header check, no regex captures.
count_results() {
  awk '
    BEGIN { s = 0; f = 0; c = 0; ts = "-"; marker = "Job result after all job steps finish: " }
    # "[yyyy-mm-dd HH:MM:SSZ INFO JobRunner] Job result after all job steps finish: <Result>"
    substr($0, 1, 1) == "[" && substr($0, 21, 18) == "Z INFO JobRunner] " && index($0, marker) == 39 {
      split(substr($0, 39 + length(marker)), rest, /[^A-Za-z]/)
      r = rest[1]
      if (r == "Succeeded" || r == "SucceededWithIssues") s++
      else if (r == "Failed" || r == "Abandoned") f++
      else if (r == "Canceled" || r == "Cancelled") c++
      else next
      ts = substr($0, 2, 19)
    }
    END { printf "%d %d %d %s\n", s, f, c, ts }
  ' "$1"
}

diag_dir="$runner_home/_diag"
cur_s=0 cur_f=0 cur_c=0 last_end=$prev_last_end
declare -A seen=()
new_state_files=""
shopt -s nullglob
for path in "$diag_dir"/Worker_*.log; do
  [[ -f $path ]] || continue
  name=${path##*/}
  [[ $name == *$'\t'* || $name == *$'\n'* ]] && continue
  meta=$(stat -c '%s %Y' -- "$path" 2>/dev/null) || continue
  read -r size mtime <<<"$meta"
  if [[ -v "st_size[$name]" && ${st_size[$name]} == "$size" && ${st_mtime[$name]} == "$mtime" ]]; then
    s=${st_s[$name]} f=${st_f[$name]} c=${st_c[$name]} ts=${st_ts[$name]}
  else
    read -r s f c stamp < <(count_results "$path") || continue
    ts=0
    if [[ $stamp != "-" ]]; then
      ts=$(date -u -d "$stamp" +%s 2>/dev/null) || ts=0
      is_uint "$ts" || ts=0
    fi
  fi
  seen[$name]=1
  cur_s=$((cur_s + s)) cur_f=$((cur_f + f)) cur_c=$((cur_c + c))
  ((ts > last_end)) && last_end=$ts
  new_state_files+=$(printf 'file\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$name" "$size" "$mtime" "$s" "$f" "$c" "$ts")$'\n'
done
shopt -u nullglob

# Logs that vanished (retention, manual cleanup) keep counting.
for name in "${!st_size[@]}"; do
  if [[ ! -v "seen[$name]" ]]; then
    retired_s=$((retired_s + st_s[$name]))
    retired_f=$((retired_f + st_f[$name]))
    retired_c=$((retired_c + st_c[$name]))
  fi
done

jobs_succeeded=$((retired_s + cur_s))
jobs_failed=$((retired_f + cur_f))
jobs_cancelled=$((retired_c + cur_c))

# ---------------------------------------------------------------------------------------------
# Output.
render() {
  local label
  echo '# HELP github_runner_up Whether the runner systemd service is active (1) or not (0).'
  echo '# TYPE github_runner_up gauge'
  echo "github_runner_up $runner_up"
  echo '# HELP github_runner_busy Whether the runner is running a job (a Runner.Worker process exists).'
  echo '# TYPE github_runner_busy gauge'
  echo "github_runner_busy $runner_busy"
  echo '# HELP github_runner_info Installed and pinned runner version; always 1.'
  echo '# TYPE github_runner_info gauge'
  printf 'github_runner_info{version="%s",pinned_version="%s"} 1\n' \
    "$(escape_label_value "$runner_version")" "$(escape_label_value "$pinned_version")"
  echo '# HELP github_runner_version_match Whether the installed runner version equals the pinned version.'
  echo '# TYPE github_runner_version_match gauge'
  echo "github_runner_version_match $version_match"
  echo '# HELP github_runner_label One series per label the runner is registered with; always 1.'
  echo '# TYPE github_runner_label gauge'
  while IFS= read -r label; do
    [[ -n $label ]] || continue
    printf 'github_runner_label{label="%s"} 1\n' "$(escape_label_value "$label")"
  done < <(printf '%s\n' "${cfg[RUNNER_LABELS]//,/$'\n'}" |
    sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | LC_ALL=C sort -u)
  echo '# HELP github_runner_last_job_end_timestamp_seconds Unix time of the last finished job (from the Worker log line), 0 if none.'
  echo '# TYPE github_runner_last_job_end_timestamp_seconds gauge'
  echo "github_runner_last_job_end_timestamp_seconds $last_end"
  echo '# HELP github_runner_jobs_total Finished jobs by result, from the runner Worker logs.'
  echo '# TYPE github_runner_jobs_total counter'
  echo "github_runner_jobs_total{result=\"succeeded\"} $jobs_succeeded"
  echo "github_runner_jobs_total{result=\"failed\"} $jobs_failed"
  echo "github_runner_jobs_total{result=\"cancelled\"} $jobs_cancelled"
  if [[ -n $work_free ]]; then
    echo '# HELP github_runner_work_dir_free_bytes Bytes available to unprivileged users on the filesystem holding the runner work directory.'
    echo '# TYPE github_runner_work_dir_free_bytes gauge'
    echo "github_runner_work_dir_free_bytes $work_free"
  fi
  echo '# HELP github_runner_metrics_last_run_timestamp_seconds Unix time this file was written.'
  echo '# TYPE github_runner_metrics_last_run_timestamp_seconds gauge'
  echo "github_runner_metrics_last_run_timestamp_seconds $(date +%s)"
}

mkdir -p -- "$textfile_dir"
tmp_out=$(mktemp -- "$textfile_dir/.github_runner.prom.XXXXXX")
render >"$tmp_out"
chmod 0644 -- "$tmp_out"
mv -f -- "$tmp_out" "$out_file"
tmp_out=""

# State last: if it fails, the next run recounts from the logs that are still there.
if ((state_ok)); then
  if tmp_state=$(mktemp -- "$state_dir/.jobs.state.XXXXXX" 2>/dev/null); then
    {
      printf 'retired\t%s\t%s\t%s\n' "$retired_s" "$retired_f" "$retired_c"
      printf 'last_job_end\t%s\n' "$last_end"
      printf '%s' "$new_state_files"
    } >"$tmp_state" && mv -f -- "$tmp_state" "$state_file" && tmp_state=""
  fi
fi

exit 0
