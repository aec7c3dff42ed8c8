#!/bin/bash
# The web page served by scalexd at /, in headless Chromium: tests/web/browser_test.sh.
exec bash "$(dirname "$0")/../web/browser_test.sh"
