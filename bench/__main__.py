"""``make bench``: every benchmark in one run, their tables collected in ``bench/out/latest.md``.

    .venv/bin/python -m bench [--only roundtrip,publish,...] [--out bench/out/latest.md]

Each benchmark runs as its own process, one after the other (they measure CPU, so they must not
share the machine with each other); its output is shown as it runs and kept in the results file
under a heading with the exact command. bench/RESULTS.md holds the numbers we recorded and what
changed them; this file is the raw material of the next update.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS: dict[str, list[str]] = {
    "publish": ["-m", "bench.publish"],
    "roundtrip": ["-m", "bench.roundtrip", "--stations", "50", "--duration", "20"],
    "connections": ["-m", "bench.connections"],
    "replay_rebuild": ["-m", "bench.replay_rebuild"],
    "projection_live": ["-m", "bench.projection_live"],
    "projection_ingest": ["-m", "bench.projection_ingest"],
    "queries": ["-m", "bench.queries"],
    "commands": ["-m", "bench.commands"],
    "sse": ["-m", "bench.sse"],
    "readings": ["-m", "bench.readings"],
}
REPO = Path(__file__).resolve().parents[1]


def _commit() -> str:
    git = shutil.which("git")
    if git is None:
        return "unknown (no git)"
    result = subprocess.run([git, "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run([git, "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    return (result.stdout.strip() or "unknown") + (" (with uncommitted changes)" if dirty.strip() else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "latest.md")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        f"# make bench, {started}\n",
        f"commit {_commit()}; {platform.python_implementation()} {platform.python_version()}; "
        f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.2f}\n",
    ]
    failed = []
    for name in names:
        command = [sys.executable, *BENCHMARKS[name]]
        shown = " ".join([".venv/bin/python", *BENCHMARKS[name]])
        print(f"\n=== {name}: {shown}", flush=True)
        began = time.monotonic()
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line)
        code = process.wait()
        took = time.monotonic() - began
        status = "" if code == 0 else f" — FAILED with exit code {code}"
        if code:
            failed.append(name)
        sections.append(f"\n## {name} ({took:.0f} s){status}\n\n`{shown}`\n\n{''.join(lines)}")
        args.out.write_text("".join(sections))  # after each benchmark, so a long run leaves partial results
    print(f"\nresults: {args.out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
