#!/usr/bin/env bash
# The base images the Dockerfile and docker-compose.yml name. Where the image registry answers,
# the official images are pulled and nothing is substituted. Where it does not (an offline or
# mirrored machine), a stand-in is built from Debian bookworm packages with mmdebstrap and
# tagged with the official name, labelled `tracker.stand-in=true`; it carries this machine's CA
# certificates and points pip and npm at them, since that is how its registries are reached.
# Images already present (official or stand-in) are kept: run with --rebuild to redo stand-ins.
# Idempotent; used by the container test (tests/container) and by hand before `docker compose up`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/need.sh

PYTHON=python:3.11-slim-bookworm
NODE=node:20-bookworm-slim
DYNAMODB=amazon/dynamodb-local:2.5.4
JAR_DIR=.cache/dynamodb-local/package/emulator  # what `make install` unpacks
rebuild=${1:-}

present() { docker image inspect "$1" >/dev/null 2>&1; }
stand_in() { [ "$(docker image inspect -f '{{index .Config.Labels "tracker.stand-in"}}' "$1" 2>/dev/null)" = true ]; }

# This machine's apt sources (no mirror is named here: the stand-in uses what the host uses).
sources() {
  local f
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [ -s "$f" ] && grep -q bookworm "$f" && { echo "$f"; return; }
  done
  echo "base-images: no Debian bookworm apt sources on this machine to build stand-ins from" >&2
  return 1
}

# build NAME PACKAGES CHANGES... : mmdebstrap a bookworm root file system and import it as NAME.
build() {
  local name=$1 packages=$2
  shift 2
  local work
  work=$(mktemp -d)
  # The hooks run on this host with the new root file system as $1.
  local certs='mkdir -p "$1/usr/local/share/ca-certificates" && { cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" 2>/dev/null || true; } && chroot "$1" update-ca-certificates >/dev/null 2>&1'
  local config='printf "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n" > "$1/etc/pip.conf" && printf "cafile=/etc/ssl/certs/ca-certificates.crt\n" > "$1/etc/npmrc"'
  local slim='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/locale/*'
  local extra=()
  [ -n "${HOOK:-}" ] && extra=(--customize-hook="$HOOK")
  echo "base-images: building the stand-in $name from Debian bookworm ($packages)"
  mmdebstrap --quiet --variant=apt --include="ca-certificates,$packages" \
    --customize-hook="$certs" --customize-hook="$config" "${extra[@]}" --customize-hook="$slim" \
    bookworm "$work/root.tar" "$(sources)"
  local changes=(--change 'LABEL tracker.stand-in=true'
    --change "LABEL org.opencontainers.image.description=\"stand-in for $name, built from Debian bookworm packages by scripts/base-images.sh\""
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV LANG=C.UTF-8'
    --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt')
  for change in "$@"; do changes+=(--change "$change"); done
  docker import "${changes[@]}" "$work/root.tar" "$name" >/dev/null
  rm -rf "$work"
  echo "base-images: $name ready ($(docker image inspect -f '{{.Size}}' "$name" | awk '{printf "%.0f MB", $1/1e6}'), stand-in)"
}

ensure() {
  local name=$1
  shift
  if present "$name" && ! { [ "$rebuild" = --rebuild ] && stand_in "$name"; }; then
    return 0
  fi
  if ! stand_in "$name" 2>/dev/null && timeout 120 docker pull -q "$name" >/dev/null 2>&1; then
    echo "base-images: $name pulled from the registry"
    return 0
  fi
  need mmdebstrap=mmdebstrap
  "$@"
}

python_image() { build "$PYTHON" python3,python3-venv,python-is-python3 'CMD ["python3"]'; }
node_image() { build "$NODE" nodejs,npm 'CMD ["node"]'; }
dynamodb_image() {
  [ -f "$JAR_DIR/DynamoDBLocal.jar" ] || { echo "base-images: $JAR_DIR missing: run make install" >&2; return 1; }
  local jar
  jar=$(realpath "$JAR_DIR")
  HOOK="mkdir -p \"\$1/home/dynamodblocal\" && cp -r '$jar'/. \"\$1/home/dynamodblocal/\"" \
    build "$DYNAMODB" openjdk-17-jre-headless \
    'WORKDIR /home/dynamodblocal' 'ENTRYPOINT ["java"]' 'CMD ["-jar", "DynamoDBLocal.jar", "-inMemory"]'
}

command -v docker >/dev/null || { echo "base-images: docker is not installed" >&2; exit 1; }
ensure "$PYTHON" python_image
ensure "$NODE" node_image
ensure "$DYNAMODB" dynamodb_image
