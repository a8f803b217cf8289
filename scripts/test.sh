#!/usr/bin/env bash
# Runs every test: formatting and lints, native tests (core, protocol,
# relay), browser tests (wasm-bindgen-test in headless Chromium) and the
# end-to-end journeys (Playwright driving Chromium against the release build
# and a real relay). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PATH="$PWD/node_modules/.bin:$PATH"

step() { printf '\n\033[1;32m==> %s\033[0m\n' "$*"; }

step "format"
cargo fmt --all --check

step "lints (native)"
cargo clippy --workspace --exclude rapport --exclude rapport-idb --all-targets --locked -- -D warnings

step "native tests"
cargo test --workspace --exclude rapport --exclude rapport-idb --locked

step "lints (wasm)"
cargo clippy -p rapport -p rapport-idb --target wasm32-unknown-unknown --all-targets --locked -- -D warnings

step "browser tests (headless Chromium)"
cargo test -p rapport-idb --target wasm32-unknown-unknown --locked

step "release build"
trunk build --release
cargo build --release -p rapport-relay --locked

step "end-to-end (Playwright + Chromium)"
node --test --test-concurrency=1 tests/e2e/
echo
echo "All tests passed. Screenshots are in artifacts/screenshots/."
