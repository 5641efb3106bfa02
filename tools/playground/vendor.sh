#!/usr/bin/env bash
# Copies the pinned browser builds of GraphiQL and React (npm ci first)
# into server/playground/assets, which the server embeds. .ci/run runs it
# and fails when the committed copies differ.
set -euo pipefail
cd "$(dirname "$0")"
out=../../server/playground/assets
mkdir -p "$out"
cp node_modules/react/umd/react.production.min.js "$out/react.production.min.js"
cp node_modules/react-dom/umd/react-dom.production.min.js "$out/react-dom.production.min.js"
cp node_modules/graphiql/graphiql.min.js "$out/graphiql.min.js"
cp node_modules/graphiql/graphiql.min.css "$out/graphiql.min.css"
