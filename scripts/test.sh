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

step "release build of the app"
trunk build --release
# The end-to-end tests use the relay binary the native tests built
# (target/debug/rapport-relay): no second, release build of the relay.

step "end-to-end (Playwright + Chromium)"
node --test --test-concurrency=1 tests/e2e/
echo
echo "All tests passed. Screenshots are in artifacts/screenshots/."
