"""`routesim import litellm-logs` on a large LiteLLM_SpendLogs table in a real PostgreSQL:
its time and peak memory against reading the same rows alone, side by side in one run.

    python benchmarks/log_import.py [--rows 2000000]

Needs Debian's PostgreSQL (as the tests do), psycopg (the logs extra) and litellm (whose
schema.prisma makes the table). The rows are made in the database: three deployments,
a call every 20 ms, 1% failures with LiteLLM's error metadata, each with a call id.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def fill(url: str, rows: int) -> None:
    import psycopg

    from sim.ingest.spend_logs import TABLE, ddl_from_prisma, litellm_schema

    with psycopg.connect(url, autocommit=True) as connection:
        for statement in ddl_from_prisma(litellm_schema())[:2]:  # the table and the startTime index
            connection.execute(statement)
        connection.execute(f'''INSERT INTO "{TABLE}" ("request_id", "call_type", "spend", "total_tokens",
            "prompt_tokens", "completion_tokens", "startTime", "endTime", "completionStartTime", "model",
            "model_id", "model_group", "custom_llm_provider", "status", "metadata")
            SELECT 'chatcmpl-' || n, 'acompletion',
                   CASE WHEN n % 100 = 0 THEN 0 ELSE ((100 + n % 900) * (1 + n % 3) + (50 + n % 400) * 4 * (1 + n % 3)) * 1e-6 END,
                   150, 100 + n % 900, CASE WHEN n % 100 = 0 THEN 0 ELSE 50 + n % 400 END,
                   TIMESTAMP '2026-11-02 00:00:00' + n * INTERVAL '20 milliseconds',
                   TIMESTAMP '2026-11-02 00:00:00' + n * INTERVAL '20 milliseconds' + (1 + (n % 37) / 10.0) * INTERVAL '1 second',
                   CASE WHEN n % 100 = 0 THEN NULL ELSE TIMESTAMP '2026-11-02 00:00:00' + n * INTERVAL '20 milliseconds'
                        + (0.2 + (n % 13) / 20.0) * INTERVAL '1 second' END,
                   'model-' || (n % 3), 'dep-' || (n % 3), 'group-' || (n % 3), 'openai',
                   CASE WHEN n % 100 = 0 THEN 'failure' ELSE 'success' END,
                   CASE WHEN n % 100 = 0 THEN jsonb_build_object('litellm_call_id', 'call-' || n,
                        'error_information', jsonb_build_object('error_code', '503'))
                        ELSE jsonb_build_object('litellm_call_id', 'call-' || n) END
            FROM generate_series(1, {rows}) AS n''')


#: Runs a command and prints its peak resident memory (KiB): each measurement in a process of its own.
_PEAK = ("import resource, subprocess, sys\n"
         "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
         "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def measured(command: list[str]) -> tuple[float, float]:
    """(seconds, peak MiB) of a command."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK, *command], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    code, peak_kib = map(int, done.stdout.split())
    if code:
        raise SystemExit(done.stderr)
    return seconds, peak_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    rows = parser.parse_args().rows
    from postgres import Cluster

    cluster = Cluster()
    cluster.start()
    try:
        fill(cluster.url, rows)
        with tempfile.TemporaryDirectory() as folder:
            read_only = [sys.executable, "-c", "import sys; sys.path.insert(0, %r)\n"
                         "from sim.ingest.spend_logs import read_spend_logs\n"
                         "print(sum(len(c) for c in read_spend_logs(%r)))" % (str(ROOT), cluster.url)]
            read_s, read_mib = measured(read_only)
            whole = [sys.executable, "-m", "sim", "import", "litellm-logs", cluster.url, "-o",
                     f"{folder}/backtest.yaml", "--trace", f"{folder}/logged.parquet"]
            import_s, import_mib = measured(whole)
        print(f"{rows:,} rows: read alone {read_s:.1f} s ({rows / read_s:,.0f} rows/s); import {import_s:.1f} s "
              f"({rows / import_s:,.0f} rows/s), {import_s / read_s:.2f}x the read; peak RSS of the import "
              f"{import_mib:,.0f} MiB (reading alone {read_mib:,.0f} MiB)")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
