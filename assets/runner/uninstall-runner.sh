#!/usr/bin/env bash
# uninstall-runner.sh: stop and uninstall the runner service and remove the runner's local
# configuration. Runs ON the runner VM as root when the runner is deleted, if the VM is reachable.
#
# It does not talk to GitHub: deregistration is done from the operator side by
# `github-runner-api.sh deregister`, which also works when the VM is already gone. The runner
# binaries stay in RUNNER_HOME (the VM is usually destroyed next); the fleet state files go, so a
# later install-runner.sh run registers again.
#
# Environment:
#   RUNNER_HOME       install directory                            (default /opt/actions-runner)
#   RUNNER_FLEET_ETC  metadata directory                              (default /etc/runner-fleet)
#
# Exits 0 when nothing is installed; failures of svc.sh are reported and ignored.
set -euo pipefail
shopt -s inherit_errexit

readonly PROG=uninstall-runner
say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }

RUNNER_HOME=${RUNNER_HOME:-/opt/actions-runner}
RUNNER_FLEET_ETC=${RUNNER_FLEET_ETC:-/etc/runner-fleet}
for var in RUNNER_HOME RUNNER_FLEET_ETC; do
  if [[ ! ${!var} =~ ^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$ ]]; then
    printf '%s: %s must be an absolute path of [A-Za-z0-9._/-] (got %s)\n' "$PROG" "$var" "${!var}" >&2
    exit 2
  fi
done

if [[ -x $RUNNER_HOME/svc.sh ]]; then
  say "stopping and uninstalling the runner service in $RUNNER_HOME"
  (cd "$RUNNER_HOME" && ./svc.sh stop) || warn "svc.sh stop failed; continuing"
  (cd "$RUNNER_HOME" && ./svc.sh uninstall) || warn "svc.sh uninstall failed; continuing"
else
  say "no runner installed in $RUNNER_HOME; nothing to stop"
fi

removed=0
for f in "$RUNNER_HOME/.runner" "$RUNNER_HOME/.credentials" "$RUNNER_HOME/.credentials_rsaparams" \
  "$RUNNER_HOME/.runner-fleet-fingerprint" "$RUNNER_FLEET_ETC/runner.env"; do
  if [[ -e $f || -L $f ]]; then
    rm -f -- "$f"
    removed=$((removed + 1))
  fi
done
say "removed $removed local runner configuration file(s)"
