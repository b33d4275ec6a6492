"""routesim's LiteLLM emulation beside the real library on issue 13's case: group g =
A (weight 3) + B (weight 1), fallback group h = C, num_retries 2, cooldown_time 1 s,
2,000 requests 20 ms apart, A answering HTTP 500 for requests 500-999; with
allowed_fails 3 and with cooldown_time only. Prints the Markdown table that
docs/policies.md shows (needs the conformance extra; about 30 s; LiteLLM on the faked clock of
tests/litellm_harness.py, so the same figures whatever the machine's load).

    python benchmarks/litellm_side_by_side.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from litellm_harness import Case, run_litellm, run_routesim  # noqa: E402


def measure(served, lo: int, hi: int) -> dict[str, float | None]:
    n = len(served.ok)
    failed_over = [i for i in range(n) if len(served.attempts[i]) > 1]
    back = next((served.start_s[i] - served.start_s[hi] for i in range(hi, n) if "A" in served.attempts[i]), None)
    return {"A's share after the failure window": sum(served.served_by(i) == "A" for i in range(hi, n)) / (n - hi),
            "attempts on A during the window": sum(a == "A" for i in range(lo, hi) for a in served.attempts[i]),
            "requests that failed over": len(failed_over) / n,
            "failed-over requests that reached group h":
                sum(served.served_by(i) == "C" for i in failed_over) / max(1, len(failed_over)),
            "A back in use after the window (s)": back,
            "weighted share of A before the failure": sum(served.served_by(i) == "A" for i in range(lo)) / lo}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    n = args.requests
    lo, hi = n // 4, n // 2
    groups = [{"model_name": "g", "litellm_params": {"model": "mock/A", "weight": 3}},
              {"model_name": "g", "litellm_params": {"model": "mock/B", "weight": 1}},
              {"model_name": "h", "litellm_params": {"model": "mock/C"}}]
    columns = {}
    for label, extra in (("allowed_fails 3", {"allowed_fails": 3}), ("cooldown_time only", {})):
        case = Case(groups, {"num_retries": 2, "cooldown_time": 1, "fallbacks": [{"g": ["h"]}], **extra}, n, 0.02,
                    [("A", lo, hi, 500)])
        real = run_litellm(case)
        with tempfile.TemporaryDirectory() as folder:
            sim = run_routesim(case, real.start_s, Path(folder))
        columns[f"LiteLLM, {label}"] = measure(real, lo, hi)
        columns[f"routesim, {label}"] = measure(sim, lo, hi)
    print("| measured | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for metric in next(iter(columns.values())):
        cells = []
        for values in columns.values():
            v = values[metric]
            cells.append("never" if v is None else f"{v:.0f}" if metric.startswith("attempts") else
                         f"{v:.2f} s" if metric.endswith("(s)") else f"{v:.1%}" if "requests" in metric else f"{v:.3f}")
        print(f"| {metric.replace(' (s)', '')} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
