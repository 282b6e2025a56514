#!/usr/bin/env bash
# Compiles upstream's definitions of the Envoy files the project has its own subset of
# (proto/envoy, proto/google/rpc/status.proto) into one descriptor set, for
# tests/controlplane/xds/envoy_api_test.cc to compare against field by field, together
# with Envoy's Bootstrap and the extensions deploy/envoy/envoy.yaml names, for
# tests/deploy/envoy_bootstrap_test.cc to parse that file with. Upstream
# here is the copy in @grpc/grpc-js-xds 1.14.1 (scripts/fetch-xds-protos.sh).
#
# usage: scripts/xds-upstream-descriptors.sh OUT.pb [CACHE_DIR]
set -euo pipefail
out="$1"
here="$(cd "$(dirname "$0")" && pwd)"
pkg="$("$here/fetch-xds-protos.sh" ${2:+"$2"})"

# The package's protoc-gen-validate predates an option that its envoy-api copy uses
# (StringRules.ignore_empty, number 26 upstream). protoc refuses unknown options, so a
# scratch copy of validate.proto gets that one field. Only the validation options'
# schema changes; no message that is compared is touched.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$pkg/deps" "$work/deps"
validate="$work/deps/protoc-gen-validate/validate/validate.proto"
if ! grep -q ignore_empty "$validate"; then
  sed -i '/^message StringRules {/a\    optional bool ignore_empty = 26;' "$validate"
fi

cd "$here/../proto"
# ext_proc's files (switchboard-picker) are newer than this copy (no FULL_DUPLEX_STREAMED):
# tests/picker/ext_proc_api_test.cc checks them against upstream's numbers instead.
mapfile -t files < <(find envoy -name '*.proto' | grep -v -e '/ext_proc/' -e '^envoy/config/core/v3/headers\.proto$' \
  -e '^envoy/type/v3/http_status\.proto$' | sort)
files+=(
  envoy/config/bootstrap/v3/bootstrap.proto
  envoy/extensions/upstreams/http/v3/http_protocol_options.proto
)
protoc -I"$work/deps/envoy-api" -I"$work/deps/xds" -I"$work/deps/googleapis" \
  -I"$work/deps/protoc-gen-validate" --include_imports -o "$out" "${files[@]}" google/rpc/status.proto
