#!/usr/bin/env bash
# Dependency audit: pip-audit on the exact pins of constraints.txt, printed as a report.
#
#   bash scripts/audit_dependencies.sh [--strict] [PINS_FILE]     (after `make install`)
#
# Outcomes (exit status without / with --strict):
#   clean        every pin audited, no known vulnerability                      0 / 0
#   findings     the vulnerable pins with their fix versions are printed        0 / 1
#   unaudited    no vulnerability service could be reached, or some pins could
#                not be looked up; the report says which                        0 / 2
#   broken       pip-audit missing, the pins file unreadable, any other error   1 / 1
# CI runs it without --strict: a vulnerability feed outage or a new advisory against an
# unchanged pin must not stop the tests; the report is in the CI log for the lead to act on.
set -euo pipefail
cd "$(dirname "$0")/.."

strict=0
if [[ "${1:-}" == "--strict" ]]; then strict=1; shift; fi
pins="${1:-constraints.txt}"
bin="${AUDIT_VENV_BIN:-.venv/bin}"
# Services in order of preference: PyPI's JSON API (the package registry), then OSV.
services="${AUDIT_SERVICES:-pypi osv}"
# Bounds the whole run per service: a network that drops packets would otherwise cost
# 15 s per pin (149 pins).
budget="${AUDIT_TIMEOUT_SECONDS:-300}"

test -x "$bin/pip-audit" || { echo "audit: $bin/pip-audit not found (run make install)" >&2; exit 1; }
test -r "$pins" || { echo "audit: cannot read $pins" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== dependency audit: $(grep -c '==' "$pins") pins in $pins ($("$bin/pip-audit" --version))"
status=20
for service in $services; do
    rc=0
    rm -f "$work/report.json"
    timeout "$budget" "$bin/pip-audit" -r "$pins" --no-deps --disable-pip \
        --progress-spinner off --vulnerability-service "$service" --desc off --aliases on \
        --format json --output "$work/report.json" 2>"$work/stderr" || rc=$?
    # The classifier prints the report and answers 0 clean, 10 findings, 20 unaudited, 1 broken.
    status=0
    "$bin/python" - "$work/report.json" "$work/stderr" "$rc" "$service" <<'PY' || status=$?
"""Classify one pip-audit run and print its report (see the header of the shell script)."""
import json
import re
import sys
from pathlib import Path

report, stderr, rc, service = Path(sys.argv[1]), Path(sys.argv[2]).read_text(), int(sys.argv[3]), sys.argv[4]
# pip-audit exits 1 both for findings and for fatal errors; only a written report tells them apart.
if not report.exists():
    outage = re.search(r"ConnectionError|Timeout|NameResolution|ServiceError|SSLError|"
                       r"Max retries|network may be blocking", stderr)
    if rc == 124 or outage:
        why = "timed out" if rc == 124 else outage.group(0)
        print(f"audit [{service}]: vulnerability service unreachable ({why})")
        sys.exit(20)
    print(f"audit [{service}]: pip-audit failed (exit {rc}):\n{stderr[-3000:]}", file=sys.stderr)
    sys.exit(1)
deps = json.loads(report.read_text())["dependencies"]
skipped = [d for d in deps if "skip_reason" in d]
vulnerable = [d for d in deps if d.get("vulns")]
audited = len(deps) - len(skipped)
print(f"audit [{service}]: {audited} of {len(deps)} pins audited, "
      f"{sum(len(d['vulns']) for d in vulnerable)} known vulnerabilities in "
      f"{len(vulnerable)} packages")
if vulnerable:
    print(f"{'package':<24} {'pinned':<14} {'advisory':<22} {'aliases':<32} fixed in")
    for d in vulnerable:
        for v in d["vulns"]:
            print(f"{d['name']:<24} {d['version']:<14} {v['id']:<22} "
                  f"{','.join(v.get('aliases', []))[:32]:<32} {', '.join(v['fix_versions']) or '-'}")
if skipped:
    shown = ", ".join(d["name"] for d in skipped[:8]) + (" ..." if len(skipped) > 8 else "")
    print(f"audit [{service}]: NOT audited: {len(skipped)} pins ({shown}); "
          f"first reason: {skipped[0]['skip_reason']}")
sys.exit(10 if vulnerable else 20 if skipped else 0)
PY
    # A service that audited every pin has the answer; otherwise try the next one.
    if (( status != 20 )); then break; fi
done

case "$status" in
    0)  echo "== dependency audit: clean" ;;
    10) echo "== dependency audit: VULNERABLE PINS (above); fix versions to raise in $pins"
        if (( strict )); then exit 1; fi ;;
    20) echo "== dependency audit: INCOMPLETE, no service ($services) could audit every pin"
        if (( strict )); then exit 2; fi ;;
    *)  echo "== dependency audit: the audit itself failed" >&2; exit 1 ;;
esac
