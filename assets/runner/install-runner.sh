#!/usr/bin/env bash
# install-runner.sh: install, register and start one self-hosted GitHub Actions runner.
#
# Runs ON the runner VM as root (a Pulumi remote command through sudo). Idempotent: when the
# installed runner already matches the requested version, checksum and fingerprint and its service
# is installed, it changes nothing, needs no RUNNER_TOKEN and prints "install-runner: already
# converged".
#
# All input comes from environment variables (never positional arguments):
#   RUNNER_VERSION       runner version, x.y.z                                          (required)
#   RUNNER_SHA256        SHA-256 of the linux-x64 tarball, 64 hex                       (required)
#   RUNNER_DOWNLOAD_URL  URL of the tarball (default: the GitHub release asset for RUNNER_VERSION)
#   RUNNER_USER          non-root account the service runs as; created if missing       (required)
#   RUNNER_HOME          install directory                        (default /opt/actions-runner)
#   RUNNER_WORK_DIR      job work directory          (default /var/lib/actions-runner/_work)
#   RUNNER_NAME          runner name on GitHub                                          (required)
#   RUNNER_LABELS        comma-separated labels                                         (required)
#   RUNNER_GROUP         runner group; passed to config.sh only when non-empty          (optional)
#   RUNNER_EPHEMERAL     true | false                                          (default false)
#   GITHUB_URL           https://github.com/<owner>/<repo> or https://github.com/<org>  (required)
#   RUNNER_TOKEN         secret registration token; required only when (re)registering
#   RUNNER_FINGERPRINT   opaque string; any change forces re-registration               (required)
#   RUNNER_FLEET_ETC     metadata directory                            (default /etc/runner-fleet)
#   RUNNER_FLEET_SYSTEMCTL  systemctl binary, a test seam                    (default systemctl)
#
# State kept on the VM (root-owned, no secrets):
#   $RUNNER_HOME/.runner-fleet-version      "<version> <sha256>" of the installed binaries
#   $RUNNER_HOME/.runner-fleet-fingerprint  hash of RUNNER_FINGERPRINT and every registration input;
#                                           written last, so a failed run is retried in full
#   $RUNNER_FLEET_ETC/runner.env            KEY=value metadata for the metrics exporter
#
# Ephemeral mode (RUNNER_EPHEMERAL=true): the runner takes one job, then deregisters itself and
# deletes its local .runner/.credentials; its service then stops. Registering it again needs a
# fresh registration token, which this host cannot mint without a GitHub credential on disk, and
# none is put there by design. So an ephemeral runner is re-registered by the next run of this
# script (the next `pulumi up` that re-runs it with a fresh RUNNER_TOKEN): it sees the missing
# .runner file, is not converged, and registers and starts the runner again.
#
# Secrets: RUNNER_TOKEN is never echoed or written anywhere by this script. config.sh receives it
# as an argument (GitHub's interface); it is removed from the environment of every child process.
set -euo pipefail
shopt -s inherit_errexit
umask 022

readonly PROG=install-runner

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
  printf '%s: %s\n' "$PROG" "$*" >&2
  exit 1
}

# ---------------------------------------------------------------------------------------------
# Input validation. Values written to runner.env are restricted to characters that need no
# quoting, so the file reads the same with bash `source`, systemd EnvironmentFile= and a plain
# split on the first '='.
# ---------------------------------------------------------------------------------------------
RUNNER_VERSION=${RUNNER_VERSION:-}
RUNNER_SHA256=${RUNNER_SHA256:-}
RUNNER_DOWNLOAD_URL=${RUNNER_DOWNLOAD_URL:-}
RUNNER_USER=${RUNNER_USER:-}
RUNNER_HOME=${RUNNER_HOME:-/opt/actions-runner}
RUNNER_WORK_DIR=${RUNNER_WORK_DIR:-/var/lib/actions-runner/_work}
RUNNER_NAME=${RUNNER_NAME:-}
RUNNER_LABELS=${RUNNER_LABELS:-}
RUNNER_GROUP=${RUNNER_GROUP:-}
RUNNER_EPHEMERAL=${RUNNER_EPHEMERAL:-false}
GITHUB_URL=${GITHUB_URL:-}
RUNNER_TOKEN=${RUNNER_TOKEN:-}
RUNNER_FINGERPRINT=${RUNNER_FINGERPRINT:-}
RUNNER_FLEET_ETC=${RUNNER_FLEET_ETC:-/etc/runner-fleet}
RUNNER_FLEET_SYSTEMCTL=${RUNNER_FLEET_SYSTEMCTL:-systemctl}

errors=()
check() { # check <value> <extended regex> <message>
  [[ $1 =~ $2 ]] || errors+=("$3")
}
safe_path='^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$'
check "$RUNNER_VERSION" '^[0-9]+\.[0-9]+\.[0-9]+$' "RUNNER_VERSION must be x.y.z (got '${RUNNER_VERSION}')"
RUNNER_SHA256=${RUNNER_SHA256,,}
check "$RUNNER_SHA256" '^[0-9a-f]{64}$' "RUNNER_SHA256 must be 64 hex digits"
if [[ -z $RUNNER_DOWNLOAD_URL && $RUNNER_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  RUNNER_DOWNLOAD_URL="https://github.com/actions/runner/releases/download/v${RUNNER_VERSION}/actions-runner-linux-x64-${RUNNER_VERSION}.tar.gz"
fi
check "$RUNNER_DOWNLOAD_URL" '^https?://[^[:space:]]+$' "RUNNER_DOWNLOAD_URL must be an http(s) URL"
check "$RUNNER_USER" '^[a-z_][a-z0-9_-]{0,31}$' "RUNNER_USER must be a valid user name (got '${RUNNER_USER}')"
[[ $RUNNER_USER != root ]] || errors+=("RUNNER_USER must not be root")
check "$RUNNER_HOME" "$safe_path" "RUNNER_HOME must be an absolute path of [A-Za-z0-9._/-] (got '${RUNNER_HOME}')"
check "$RUNNER_WORK_DIR" "$safe_path" "RUNNER_WORK_DIR must be an absolute path of [A-Za-z0-9._/-] (got '${RUNNER_WORK_DIR}')"
check "$RUNNER_FLEET_ETC" "$safe_path" "RUNNER_FLEET_ETC must be an absolute path of [A-Za-z0-9._/-] (got '${RUNNER_FLEET_ETC}')"
check "$RUNNER_NAME" '^[A-Za-z0-9._-]{1,64}$' "RUNNER_NAME must be 1-64 characters of [A-Za-z0-9._-] (got '${RUNNER_NAME}')"
check "$RUNNER_LABELS" '^[A-Za-z0-9._:/+-]+(,[A-Za-z0-9._:/+-]+)*$' \
  "RUNNER_LABELS must be comma-separated labels of [A-Za-z0-9._:/+-] (got '${RUNNER_LABELS}')"
check "$RUNNER_GROUP" '^[^[:cntrl:]]{0,128}$' "RUNNER_GROUP must not contain control characters"
check "$RUNNER_EPHEMERAL" '^(true|false)$' "RUNNER_EPHEMERAL must be true or false (got '${RUNNER_EPHEMERAL}')"
check "$GITHUB_URL" '^https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)?$' \
  "GITHUB_URL must be https://<host>/<owner>[/<repo>] (got '${GITHUB_URL}')"
check "$RUNNER_FINGERPRINT" '^[^[:cntrl:]]+$' "RUNNER_FINGERPRINT must be a non-empty single line"
check "$RUNNER_TOKEN" '^[^[:cntrl:][:space:]]*$' "RUNNER_TOKEN must not contain whitespace"
case $RUNNER_HOME in
  / | /bin | /boot | /dev | /etc | /home | /lib | /opt | /proc | /root | /sbin | /sys | /tmp | /usr | /var)
    errors+=("RUNNER_HOME must not be the system directory ${RUNNER_HOME}")
    ;;
esac
[[ $RUNNER_WORK_DIR != "$RUNNER_HOME" && $RUNNER_WORK_DIR != "$RUNNER_HOME"/* ]] ||
  errors+=("RUNNER_WORK_DIR must be outside RUNNER_HOME (RUNNER_HOME is replaced on upgrades)")
if ((${#errors[@]} > 0)); then
  for e in "${errors[@]}"; do printf '%s: %s\n' "$PROG" "$e" >&2; done
  exit 2
fi
[[ $EUID -eq 0 ]] || die "must run as root"
for tool in curl sha256sum tar runuser flock useradd; do
  command -v "$tool" >/dev/null || die "required tool '$tool' not found"
done

# Every child process gets an environment without the token.
run_clean() { env -u RUNNER_TOKEN "$@"; }
# as_runner <cmd> [args...]: run in RUNNER_HOME as RUNNER_USER (config.sh refuses root).
as_runner() { (cd "$RUNNER_HOME" && run_clean runuser -u "$RUNNER_USER" -- "$@"); }
# as_root <cmd> [args...]: run in RUNNER_HOME as root (svc.sh needs root).
as_root() { (cd "$RUNNER_HOME" && run_clean "$@"); }

tarball_name="actions-runner-linux-x64-${RUNNER_VERSION}.tar.gz"
version_file="$RUNNER_HOME/.runner-fleet-version"
fingerprint_file="$RUNNER_HOME/.runner-fleet-fingerprint"
metadata_file="$RUNNER_FLEET_ETC/runner.env"

# The stored fingerprint covers the caller's RUNNER_FINGERPRINT and every input that shapes the
# registration, so a forgotten field in the caller's hash still forces re-registration.
desired_fingerprint=$(
  printf '%s\n' "v1" "$RUNNER_FINGERPRINT" "$RUNNER_VERSION" "$RUNNER_SHA256" "$GITHUB_URL" \
    "$RUNNER_NAME" "$RUNNER_LABELS" "$RUNNER_GROUP" "$RUNNER_EPHEMERAL" "$RUNNER_USER" \
    "$RUNNER_HOME" "$RUNNER_WORK_DIR" | sha256sum | cut -d' ' -f1
)
desired_metadata=$(
  printf '%s\n' \
    "# Written by install-runner.sh (runner-fleet). No secrets." \
    "RUNNER_NAME=$RUNNER_NAME" \
    "RUNNER_VERSION=$RUNNER_VERSION" \
    "RUNNER_LABELS=$RUNNER_LABELS" \
    "RUNNER_HOME=$RUNNER_HOME" \
    "RUNNER_WORK_DIR=$RUNNER_WORK_DIR" \
    "RUNNER_USER=$RUNNER_USER" \
    "RUNNER_EPHEMERAL=$RUNNER_EPHEMERAL"
)

# Scratch paths, removed on every exit path.
scratch=""
meta_tmp=""
cleanup() { rm -rf -- ${scratch:+"$scratch"} ${meta_tmp:+"$meta_tmp"}; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One run at a time per host.
mkdir -p -- "$RUNNER_FLEET_ETC"
exec 9>"$RUNNER_FLEET_ETC/.install-runner.lock"
flock -w 600 9 || die "another install-runner run holds $RUNNER_FLEET_ETC/.install-runner.lock"

# ---------------------------------------------------------------------------------------------
# Observe the current state.
# ---------------------------------------------------------------------------------------------
read_file() { if [[ -f $1 ]]; then cat -- "$1"; fi; }
service_unit() { read_file "$RUNNER_HOME/.service"; }

binaries_ok=false
if [[ "$(read_file "$version_file")" == "$RUNNER_VERSION $RUNNER_SHA256" &&
  -x $RUNNER_HOME/config.sh && -x $RUNNER_HOME/svc.sh && -e $RUNNER_HOME/bin/Runner.Listener ]]; then
  binaries_ok=true
fi
fingerprint_ok=false
[[ "$(read_file "$fingerprint_file")" == "$desired_fingerprint" ]] && fingerprint_ok=true
registered=false
[[ -f $RUNNER_HOME/.runner ]] && registered=true
unit=$(service_unit)
service_installed=false
if [[ -n $unit ]] && "$RUNNER_FLEET_SYSTEMCTL" is-enabled --quiet "$unit" 2>/dev/null; then
  service_installed=true
fi
service_active=false
if $service_installed && "$RUNNER_FLEET_SYSTEMCTL" is-active --quiet "$unit" 2>/dev/null; then
  service_active=true
fi

need_binaries=true
$binaries_ok && need_binaries=false
need_register=true
if ! $need_binaries && $fingerprint_ok && $registered; then need_register=false; fi
need_service=true
if ! $need_register && $service_installed; then need_service=false; fi

write_metadata() {
  [[ "$(read_file "$metadata_file")" == "$desired_metadata" ]] && return 0
  meta_tmp=$(mktemp "$RUNNER_FLEET_ETC/.runner.env.XXXXXX")
  printf '%s\n' "$desired_metadata" >"$meta_tmp"
  chmod 0644 "$meta_tmp"
  mv -f -- "$meta_tmp" "$metadata_file"
  meta_tmp=""
  say "wrote $metadata_file"
}

if ! $need_binaries && ! $need_register && ! $need_service; then
  if ! $service_active; then
    say "service $unit is not active; starting it"
    as_root ./svc.sh start
  fi
  write_metadata
  say "already converged"
  exit 0
fi

if $need_register && [[ -z $RUNNER_TOKEN ]]; then
  die "RUNNER_TOKEN is required: runner ${RUNNER_NAME} must be (re)registered"
fi

# ---------------------------------------------------------------------------------------------
# Download and verify into a private scratch directory beside RUNNER_HOME (same filesystem, so
# the final move is a rename). Removed on every exit path.
# ---------------------------------------------------------------------------------------------
home_parent=$(dirname -- "$RUNNER_HOME")
mkdir -p -- "$home_parent"
scratch=$(mktemp -d "$home_parent/.$(basename -- "$RUNNER_HOME").install.XXXXXX")

if $need_binaries; then
  say "downloading $tarball_name from $RUNNER_DOWNLOAD_URL"
  run_clean curl -fsSL --retry 5 --retry-delay 2 --retry-connrefused --connect-timeout 20 --max-time 900 \
    -o "$scratch/$tarball_name" "$RUNNER_DOWNLOAD_URL" ||
    die "download of $RUNNER_DOWNLOAD_URL failed"
  actual=$(sha256sum -- "$scratch/$tarball_name" | cut -d' ' -f1)
  if [[ $actual != "$RUNNER_SHA256" ]]; then
    die "checksum mismatch for $tarball_name: expected $RUNNER_SHA256, got $actual"
  fi
  say "checksum verified ($actual)"
  mkdir -- "$scratch/stage"
  tar -xzf "$scratch/$tarball_name" -C "$scratch/stage" --no-same-owner --no-same-permissions ||
    die "cannot extract $tarball_name"
  rm -f -- "$scratch/$tarball_name"
  for f in config.sh svc.sh bin/Runner.Listener; do
    [[ -e $scratch/stage/$f ]] || die "$tarball_name has no $f; not a runner tarball"
  done
  printf '%s %s\n' "$RUNNER_VERSION" "$RUNNER_SHA256" >"$scratch/stage/.runner-fleet-version"
fi

# ---------------------------------------------------------------------------------------------
# Account, work directory.
# ---------------------------------------------------------------------------------------------
if ! id -u -- "$RUNNER_USER" >/dev/null 2>&1; then
  useradd --create-home --user-group --shell /bin/bash --comment "GitHub Actions runner" -- "$RUNNER_USER"
  say "created user $RUNNER_USER"
fi
[[ "$(id -u -- "$RUNNER_USER")" != 0 ]] || die "RUNNER_USER $RUNNER_USER has uid 0; refusing"
runner_group=$(id -gn -- "$RUNNER_USER")
mkdir -p -- "$RUNNER_WORK_DIR"
chown -- "$RUNNER_USER:$runner_group" "$RUNNER_WORK_DIR"
chmod 0750 -- "$RUNNER_WORK_DIR"

# ---------------------------------------------------------------------------------------------
# Tear down what must change. From here on the state file is gone, so an interrupted run is
# never mistaken for a converged one.
# ---------------------------------------------------------------------------------------------
rm -f -- "$fingerprint_file"
if $need_register && [[ -x $RUNNER_HOME/svc.sh ]]; then
  if [[ -n $unit ]]; then
    say "stopping and uninstalling service $unit"
    as_root ./svc.sh stop || warn "svc.sh stop failed; continuing"
    as_root ./svc.sh uninstall || warn "svc.sh uninstall failed; continuing"
  fi
  if $registered; then
    say "removing the existing registration of $RUNNER_HOME"
    # A registration token is accepted by `config.sh remove`. If the runner is already gone on
    # GitHub's side this fails; the local files are then removed below and --replace takes over.
    as_runner ./config.sh remove --token "$RUNNER_TOKEN" ||
      warn "config.sh remove failed; removing local runner configuration and registering with --replace"
    rm -f -- "$RUNNER_HOME/.runner" "$RUNNER_HOME/.credentials" "$RUNNER_HOME/.credentials_rsaparams"
  fi
fi

if $need_binaries; then
  chown -R -- "$RUNNER_USER:$runner_group" "$scratch/stage"
  chown root:root -- "$scratch/stage/.runner-fleet-version"
  chmod 0755 -- "$scratch/stage"
  if [[ -e $RUNNER_HOME ]]; then
    mv -- "$RUNNER_HOME" "$scratch/previous"
  fi
  if ! mv -- "$scratch/stage" "$RUNNER_HOME"; then
    [[ -e $scratch/previous ]] && mv -- "$scratch/previous" "$RUNNER_HOME"
    die "cannot move the new runner into $RUNNER_HOME"
  fi
  say "installed runner $RUNNER_VERSION into $RUNNER_HOME"
  if [[ -x $RUNNER_HOME/bin/installdependencies.sh ]]; then
    as_root ./bin/installdependencies.sh >/dev/null ||
      warn "bin/installdependencies.sh failed; config.sh reports any missing library"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Register, install and start the service.
# ---------------------------------------------------------------------------------------------
if $need_register; then
  config_args=(--unattended --disableupdate --url "$GITHUB_URL" --token "$RUNNER_TOKEN"
    --name "$RUNNER_NAME" --labels "$RUNNER_LABELS" --work "$RUNNER_WORK_DIR" --replace)
  [[ -n $RUNNER_GROUP ]] && config_args+=(--runnergroup "$RUNNER_GROUP")
  [[ $RUNNER_EPHEMERAL == true ]] && config_args+=(--ephemeral)
  say "registering runner $RUNNER_NAME at $GITHUB_URL (labels $RUNNER_LABELS)"
  as_runner ./config.sh "${config_args[@]}" || die "config.sh failed to register runner $RUNNER_NAME"
fi

if $need_service; then
  if ! $need_register && [[ -n $unit ]]; then
    as_root ./svc.sh uninstall || warn "svc.sh uninstall of the stale service $unit failed; continuing"
  fi
  as_root ./svc.sh install "$RUNNER_USER" || die "svc.sh install failed"
  as_root ./svc.sh start || die "svc.sh start failed"
  say "service $(service_unit) installed and started"
elif ! $service_active; then
  as_root ./svc.sh start || die "svc.sh start failed"
fi

write_metadata
printf '%s\n' "$desired_fingerprint" >"$fingerprint_file"
chown root:root -- "$fingerprint_file"
chmod 0644 -- "$fingerprint_file"
say "converged: runner $RUNNER_NAME $RUNNER_VERSION"
