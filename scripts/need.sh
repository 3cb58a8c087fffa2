# Sourced by the install scripts. `need COMMAND=PACKAGE ...`: the Debian packages of the
# commands that are missing are installed together (as root, with apt-get); elsewhere one line
# names them and `need` fails.
need() {
  local missing=() packages=()
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 && continue
    missing+=("${pair%%=*}") && packages+=("${pair#*=}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install: ${missing[*]} missing; installing the Debian packages ${packages[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  else
    echo "install: ${missing[*]} missing: install ${packages[*]} (or equivalents) and run again" >&2
    return 1
  fi
}
