#!/usr/bin/env bash
# Installs everything Rapport needs to build, run and test, skipping what is
# already there. Safe to run again: a second run takes seconds.
#   scripts/setup.sh            toolchain for building and running
#   scripts/setup.sh --test     plus Chromium, chromedriver and npm test deps
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.21.14
want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock
}

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! command -v trunk >/dev/null || [[ "$(trunk --version)" != "trunk $TRUNK_VERSION" ]]; then
  log "installing trunk $TRUNK_VERSION (about 8 minutes on 2 cores)"
  cargo install trunk --version "$TRUNK_VERSION" --locked
fi

WB_VERSION=$(wasm_bindgen_version)
if ! command -v wasm-bindgen >/dev/null || [[ "$(wasm-bindgen --version)" != "wasm-bindgen $WB_VERSION" ]]; then
  log "installing wasm-bindgen-cli $WB_VERSION (about 3 minutes)"
  # --locked fails against the registry mirror (see docs/ARCHITECTURE.md, Toolchain).
  cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi

# npm packages: wasm-opt (binaryen 132; Debian's 108 emits wasm that crashes),
# playwright-core for end-to-end tests and screenshots, axe-core for the
# accessibility check.
if [[ ! -x node_modules/.bin/wasm-opt || ! -d node_modules/playwright-core || ! -d node_modules/axe-core ]]; then
  log "installing npm packages (binaryen, playwright-core, axe-core)"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [[ $want_test == 1 ]]; then
  if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
    log "installing chromium and chromium-driver from apt"
    SUDO=""; [[ $(id -u) != 0 ]] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
fi

# Dependencies are fetched once so that trunk can build with --offline.
cargo fetch --locked >/dev/null 2>&1 || cargo fetch
log "toolchain ready"
