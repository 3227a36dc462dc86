#!/usr/bin/env bash
# Rebuilds the web chat widget (../Widget/widget.js, embedded in the connector and served at /widget.js) from src/ and
# package-lock.json. The output is committed, so a fresh clone runs with the .NET SDK alone; CI (.ci/run) runs this and
# fails if the committed bundle differs. Needs Node 20+ and npm.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build
