"""Run every bench module (bench/bench_*.py) and pass their JSON result lines through.

    python -m bench.run [NAME ...]     # e.g. python -m bench.run bench_cert_read

Each bench runs as `python -m bench.<name>` in its own process and prints one JSON line
per measurement: {"bench": NAME, "value": V, "unit": U, "baseline": B, "ratio": R}.
Other output goes to stderr. Exits non-zero if any bench failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
TIMEOUT_SECONDS = 900


def result_line(bench: str, value: float, unit: str, baseline: float) -> str:
    """One JSON result line; ratio = value / baseline (1.0 means as fast as the baseline)."""
    ratio = value / baseline if baseline else float("inf")
    return json.dumps(
        {
            "bench": bench,
            "value": round(value, 6),
            "unit": unit,
            "baseline": round(baseline, 6),
            "ratio": round(ratio, 3),
        }
    )


def emit(bench: str, value: float, unit: str, baseline: float) -> None:
    """Print one result line on stdout (what bench.run collects)."""
    print(result_line(bench, value, unit, baseline), flush=True)


def discover(names: list[str] | None = None) -> list[str]:
    """Module names of the benches, sorted; only `names` when given."""
    found = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))
    if not names:
        return found
    unknown = sorted(set(names) - set(found))
    if unknown:
        raise SystemExit(f"unknown bench: {', '.join(unknown)} (have: {', '.join(found)})")
    return [n for n in found if n in names]


def is_result(line: str) -> bool:
    """Is `line` a JSON result line?"""
    try:
        doc = json.loads(line)
    except ValueError:
        return False
    return isinstance(doc, dict) and "bench" in doc and "value" in doc


def run_one(name: str) -> bool:
    """Run one bench module; pass its result lines to stdout, the rest to stderr."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        print(f"bench {name}: timed out after {TIMEOUT_SECONDS} s", file=sys.stderr)
        return False
    for line in done.stdout.splitlines():
        print(line, file=sys.stdout if is_result(line) else sys.stderr, flush=True)
    if done.stderr:
        sys.stderr.write(done.stderr)
    if done.returncode != 0:
        print(f"bench {name}: exit status {done.returncode}", file=sys.stderr)
    return done.returncode == 0


def main(argv: list[str] | None = None) -> int:
    """Run the benches; 0 when all succeeded."""
    names = discover(list(sys.argv[1:] if argv is None else argv))
    if not names:
        print("no bench modules in bench/", file=sys.stderr)
        return 1
    results = [run_one(name) for name in names]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
