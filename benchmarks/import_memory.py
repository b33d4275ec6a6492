"""Trace import in bounded memory: peak RSS of ``routesim trace import`` on
Azure-format CSVs of growing size, each import in its own process.

Bounded memory means the peak stays flat as the file grows (it depends on
``--chunk-rows``, not on the file). Prints rows, file size, wall time and peak
RSS per size, and the ratio of the largest to the smallest peak.

    python benchmarks/import_memory.py [--rows 1000000 4000000] [--chunk-rows 200000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def write_azure_csv(path: Path, rows: int, seed: int = 0) -> None:
    """An Azure-format trace of ``rows`` requests, written in slices (the writer stays small too)."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2023-11-16T18:00:00", "ns")
    t = 0.0
    with path.open("w") as f:
        f.write("TIMESTAMP,ContextTokens,GeneratedTokens\n")
        for lo in range(0, rows, 500_000):
            n = min(500_000, rows - lo)
            times = t + np.cumsum(rng.exponential(0.01, n))
            t = float(times[-1])
            stamps = (start + (times * 1e9).astype("timedelta64[ns]")).astype(str)
            stamps = np.char.replace(stamps, "T", " ")
            ins, outs = rng.integers(1, 8000, n), rng.integers(0, 800, n)
            f.writelines(f"{s[:27]},{i},{o}\n" for s, i, o in zip(stamps, ins, outs))


def measure(csv: Path, out: Path, chunk_rows: int) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one import in a fresh process."""
    code = ("import resource, sys; from sim.cli.app import main; sys.argv = ['routesim'] + sys.argv[1:]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, "trace", "import", "--format", "azure", str(csv), str(out),
                           "--chunk-rows", str(chunk_rows)], capture_output=True, text=True, cwd=ROOT, check=True)
    seconds = time.perf_counter() - began
    peak = int(next(line.split()[1] for line in done.stderr.splitlines() if line.startswith("PEAK")))
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    args = parser.parse_args()
    peaks = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            csv = Path(tmp) / f"azure-{rows}.csv"
            write_azure_csv(csv, rows)
            seconds, peak = measure(csv, Path(tmp) / f"azure-{rows}.parquet", args.chunk_rows)
            peaks.append(peak)
            print(f"{rows:>11,} rows  {csv.stat().st_size / 2**20:8.1f} MiB  {seconds:7.1f} s  "
                  f"{rows / seconds:>10,.0f} rows/s  peak RSS {peak / 1024:7.1f} MiB")
            csv.unlink()
    print(f"peak RSS, largest / smallest file: {peaks[-1] / peaks[0]:.2f}x "
          f"for {args.rows[-1] / args.rows[0]:.0f}x the rows (flat means bounded)")


if __name__ == "__main__":
    main()
