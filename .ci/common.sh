# Helpers shared by .ci/run and .ci/backends (sourced, not run).

stage() { printf '\n== %s (at %ds)\n' "$1" "$SECONDS"; }

# Debian packages, installed only when missing; `apt-get update` only when the install needs it.
apt_install() { # packages
  [ $# -gt 0 ] || return 0
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  local apt="$sudo env DEBIAN_FRONTEND=noninteractive apt-get"
  $apt install -y --no-install-recommends "$@" \
    || { $apt update && $apt install -y --no-install-recommends "$@"; }
}

# A Python venv (created when missing) with pip's arguments installed into it.
venv_with() { # venv, then pip's arguments
  local venv="$1"; shift
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
}

# Where the venvs and install logs live between runs on one machine.
CACHE="${DDPM_CI_CACHE:-$HOME/.cache/ddpm-core}"
mkdir -p "$CACHE"
