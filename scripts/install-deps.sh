#!/usr/bin/env bash
# Installs the Debian 12 packages Switchboard builds and tests with, and only those
# that are missing. Uses sudo when not root. Safe to run repeatedly: when everything
# is present it does nothing and makes no network calls.
set -euo pipefail

PACKAGES=(
  cmake g++ make ccache pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev libsqlite3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libcpp-httplib-dev
  sqlite3 curl procps openssl
  haproxy nginx-light   # integration_proxy_sync_test runs the real proxies
  clang libclang-rt-14-dev   # TSan preset and libFuzzer (make test-tsan, make fuzz)
  prometheus   # promtool: integration_metrics_lint_test, deploy_prometheus_rules_test
  systemd      # systemd-analyze verify: deploy_systemd_test
  libcivetweb-dev   # the dashboard's handlers on the metrics server (prometheus-cpp-dev pulls it in too)
  chromium   # integration_dashboard_test drives the dashboard in headless chromium
  libssl-dev   # TLS flags and admin token hashes (common/tls, common/auth); openssl makes the test CAs
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-deps: not root and no sudo; install these by hand: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

# The tests run their own haproxy and nginx (temporary configs on free loopback ports);
# the system services Debian starts on installation are not needed. Stop the ones
# installed just now, leaving any that were already there alone.
for svc in haproxy nginx prometheus; do
  case " ${missing[*]} " in
    *" $svc "* | *" $svc-light "*)
      if [ -d /run/systemd/system ]; then  # systemd is running
        $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
      fi
      ;;
  esac
done
