# Sourced by the install scripts. `need PACKAGE COMMAND...`: when a command is missing, install
# the Debian package that provides it (as root, with apt-get), or say what to install and fail.
need() {
  local package="$1"; shift
  local missing=()
  for command in "$@"; do command -v "$command" >/dev/null 2>&1 || missing+=("$command"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install: ${missing[*]} missing; installing the Debian package $package"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
  else
    echo "install: ${missing[*]} missing: install $package (or an equivalent) and run again" >&2
    return 1
  fi
}
