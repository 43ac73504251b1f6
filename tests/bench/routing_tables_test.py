#!/usr/bin/env python3
"""bench/tools/routing_tables.py on a synthetic report: every column of a row, the concurrency
unit, a policy named by its file, and its errors for an empty directory and a report without
round-robin."""
import json
import os
import subprocess
import sys
import tempfile

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "tools",
                    "routing_tables.py")


def policy(name, peak, goodput, goodput_rate, knee, stages):
    return {"policy": name, "peak_output_tokens_per_s": peak, "goodput_rps_at_slo": goodput,
            "goodput_rate": goodput_rate, "knee_rate": knee, "prefix_hit_rate": 0.5,
            "ideal_prefix_hit_rate": 0.998, "ideal_fleet_kv_prefix_hit_rate": 0.75,
            "stages": [{"rate": r, "output_tokens_per_s": t, "ttft_ms": {"p90": ttft}}
                       for r, t, ttft in stages]}


def run(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)


def main():
    with tempfile.TemporaryDirectory() as d:
        report = {"workload": "reasoning", "arrival": "concurrency", "seed": 3, "policies": [
            policy("round-robin", 1000, 0.25, 50, 150, [(50, 800, 900), (150, 1000, 40000.4)]),
            policy("/x/zumik-variant.yaml", 2500, 0.5, 150, 50,
                   [(50, 2400, 300), (150, 2500, 1500)]),
            # Not a YAML file: named as given, as seed_targets.py names it too.
            policy("least-request.v2", 1000, 0.25, 50, 150, [(50, 800, 900), (150, 1000, 900)])]}
        with open(os.path.join(d, "reasoning.json"), "w") as f:
            json.dump(report, f)
        out = run(d)
        assert out.returncode == 0, out.stderr
        text = out.stdout
        assert "#### `reasoning` (concurrency; RR knee 150 clients; seed 3)" in text, text
        assert "| goodput rps @ clients |" in text, text
        assert ("| round-robin | 1,000 | 1.00 | 0.25 @ 50 | 150 | 1,000 (1.00) | 40,000 | 50.0% "
                "| 99.8% | 75.0% |") in text, text
        assert ("| zumik-variant | 2,500 | 2.50 | 0.50 @ 150 | 50 | 2,500 (2.50) | 1,500 | 50.0% "
                "| 99.8% | 75.0% |") in text, text
        assert "| least-request.v2 | 1,000 | 1.00 |" in text, text

        del report["policies"][0]
        with open(os.path.join(d, "reasoning.json"), "w") as f:
            json.dump(report, f)
        out = run(d)
        assert out.returncode != 0 and "no round-robin entry" in out.stderr, out.stderr

    with tempfile.TemporaryDirectory() as empty:
        out = run(empty)
        assert out.returncode != 0 and "no WORKLOAD.json reports" in out.stderr, out.stderr
    print("routing_tables_test: ok")


if __name__ == "__main__":
    main()
