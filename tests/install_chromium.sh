#!/usr/bin/env bash
# Debian's chromium, for the tests that open pages in a real headless browser: the report's
# (tests/test_gallery.py) and the review page, driven by Playwright on this browser, never one it
# downloads (tests/browser.py). Run by `make test` before the suite, so a developer's `make test` and
# CI run the same tests. Installs it where it is missing and this machine can (root, apt-get);
# elsewhere it says why and those tests are skipped with that reason. Always exits 0: a machine
# without a browser still runs every other test.
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "tests/install_chromium.sh: chromium is not installed and this is not root with apt-get:" \
       "the browser tests will be skipped (install Debian's chromium package to run them)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "tests/install_chromium.sh: installing Debian's chromium for the browser tests" >&2
if ! apt-get install -y -qq chromium >/dev/null 2>&1; then
  apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1 \
    || echo "tests/install_chromium.sh: apt-get could not install chromium: the browser tests will be skipped" >&2
fi
exit 0
