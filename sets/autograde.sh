#!/usr/bin/env bash
# Autograde a learner's sdlings workbook: re-check the exercises of a set and write reports.
#
#   sets/autograde.sh SET [OUT_DIR]
#
# Run it from the root of the learner's workbook (their fork or `sdlings init` repository). It
# writes OUT_DIR/report.json (schema: sets/README.md), OUT_DIR/report.xml (JUnit, for CI test
# viewers) and OUT_DIR/report.md (for a pull-request comment), prints the summary, and exits 0
# when every exercise of the set passes with its original tests, 1 otherwise, 2 on a setup error.
# The reports name the learner SDLINGS_LEARNER if it is set (the workflow sets the GitHub login);
# otherwise sdlings takes the author of the latest commit. A mentor merges the JSON reports of a
# cohort with `sdlings report merge */report.json --output cohort.html`.
set -euo pipefail

set_name=${1:?usage: sets/autograde.sh SET [OUT_DIR]}
out=${2:-sdlings-report}
mkdir -p "$out"

# The learner's own sdlings if it is installed, else the one in this repository.
if command -v sdlings >/dev/null 2>&1; then
    sdlings=(sdlings)
else
    cargo build --release --quiet
    sdlings=(./target/release/sdlings)
fi

# Check every exercise of the set (--all: locked ones too); the first run builds, the other two
# reuse the build.
learner=()
if [ -n "${SDLINGS_LEARNER:-}" ]; then
    learner=(--learner "$SDLINGS_LEARNER")
fi
status=0
"${sdlings[@]}" --color never verify --set "$set_name" --all "${learner[@]}" --format json --output "$out/report.json" || status=$?
"${sdlings[@]}" --color never verify --set "$set_name" --all "${learner[@]}" --format junit --output "$out/report.xml" || true
"${sdlings[@]}" --color never verify --set "$set_name" --all "${learner[@]}" --format markdown --output "$out/report.md" || true
exit "$status"
