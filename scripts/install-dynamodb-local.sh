#!/usr/bin/env bash
# Unpack the official DynamoDB Local (shipped inside the npm package amplify-dynamodb-simulator)
# into .cache/dynamodb-local, and make sure a Java runtime is there to run it. Idempotent.
set -euo pipefail
version="${DYNAMODB_SIMULATOR_VERSION:-2.9.30}"   # carries DynamoDBLocal.jar 1.25.1
dest="${1:-.cache/dynamodb-local}"
jar="$dest/package/emulator/DynamoDBLocal.jar"

. "$(dirname "$0")/need.sh"
need java=openjdk-17-jre-headless   # DynamoDB Local runs on Java 17

if [ -f "$jar" ] && [ -f "$dest/.version" ] && [ "$(cat "$dest/.version")" = "$version" ]; then
  exit 0
fi
need npm=npm
echo "install: fetching DynamoDB Local (amplify-dynamodb-simulator@$version, ~56 MB)"
rm -rf "$dest" && mkdir -p "$dest"
tarball=$(cd "$dest" && npm pack --silent "amplify-dynamodb-simulator@$version" 2>/dev/null | tail -n 1)
tar -xzf "$dest/$tarball" -C "$dest"
rm -f "$dest/$tarball"
test -f "$jar" || { echo "install: $jar missing from the package" >&2; exit 1; }
echo "$version" > "$dest/.version"
echo "install: DynamoDB Local (from amplify-dynamodb-simulator@$version) ready in $dest"
