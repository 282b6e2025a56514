#!/usr/bin/env bash
# Fetches the npm package @grpc/grpc-js-xds 1.14.1 (Apache-2.0), whose deps/ holds a copy
# of Envoy's API, xds, udpa, googleapis and protoc-gen-validate, into a cache directory,
# verifies it against the pinned integrity hash, and unpacks it. Used only by the test
# that checks our own Envoy subset (proto/envoy) against it; never committed, never
# compiled into a binary. Prints the unpacked package directory.
#
# usage: scripts/fetch-xds-protos.sh [CACHE_DIR]   (default: ~/.cache/switchboard)
set -euo pipefail

NAME="@grpc/grpc-js-xds"
VERSION="1.14.1"
INTEGRITY="sha512-F2mVXwEeMWw1znPUrp+8ykjsIOVnf7Rv+EyIvXOfz73w5tNolCnzokpLkE/d2Ehx30PJmZXqCQdMpx8DcBJohA=="
CACHE="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard}"
TARBALL="$CACHE/grpc-grpc-js-xds-$VERSION.tgz"
DEST="$CACHE/grpc-js-xds-$VERSION"

integrity_of() {
  echo "sha512-$(openssl dgst -sha512 -binary "$1" | base64 -w0)"
}

mkdir -p "$CACHE"
if [ -f "$DEST/.verified" ]; then
  echo "$DEST/package"
  exit 0
fi

if [ ! -f "$TARBALL" ] || [ "$(integrity_of "$TARBALL")" != "$INTEGRITY" ]; then
  rm -f "$TARBALL"
  # The registry's tarball URL for the pinned version: curl is enough (no npm needed).
  curl -fsSL --retry 3 -o "$TARBALL.part" "https://registry.npmjs.org/$NAME/-/grpc-js-xds-$VERSION.tgz"
  mv "$TARBALL.part" "$TARBALL"
fi
actual="$(integrity_of "$TARBALL")"
if [ "$actual" != "$INTEGRITY" ]; then
  echo "fetch-xds-protos: integrity mismatch for $TARBALL: $actual" >&2
  rm -f "$TARBALL"
  exit 1
fi

tmp="$(mktemp -d "$CACHE/unpack.XXXXXX")"
tar -xzf "$TARBALL" -C "$tmp"
rm -rf "$DEST"
mv "$tmp" "$DEST"
touch "$DEST/.verified"
echo "$DEST/package"
