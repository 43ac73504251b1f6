#!/usr/bin/env python3
"""bench/tools/seed_targets.py on synthetic reports: which cells it judges failing, how it merges
reports of one cell, and its error for an empty directory."""
import json
import os
import subprocess
import sys
import tempfile

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench", "tools",
                    "seed_targets.py")


def entry(policy, goodput, peak):
    return {"policy": policy, "goodput_rps_at_slo": goodput, "peak_output_tokens_per_s": peak}


def write(directory, name, workload, seed, entries):
    with open(os.path.join(directory, name), "w") as f:
        json.dump({"workload": workload, "seed": seed, "policies": entries}, f)


def run(*args):
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True)


def main():
    with tempfile.TemporaryDirectory() as d:
        base = [entry("round-robin", 5, 7000), entry("least-request", 8, 10000),
                entry("gie-default", 10.0, 13000), entry("llm-d-default", 9.0, 12000),
                entry("oracle", 12.0, 15000)]
        # b2b seed 1: ours below 0.95x oracle's peak and below gie-default's goodput.
        write(d, "b2b-s1.json", "b2b", 1, base + [entry("zumik-default", 9.9994, 14000)])
        # b2b seed 2: ours fine; a variant comes from a second report of the same cell.
        write(d, "b2b-s2.json", "b2b", 2, base + [entry("zumik-default", 12.0, 15000)])
        write(d, "b2b-s2-variant.json", "b2b", 2, [entry("dir/x.yaml", 11.5, 14000)])
        # random seed 1: ours under 0.97x least-request's peak.
        write(d, "random-s1.json", "random", 1, base + [entry("zumik-default", 10.0, 9600)])
        write(d, "notes.txt", "b2b", 9, [])  # not a report name: ignored

        out = run(d, "--policies", "zumik-default,x")
        assert out.returncode == 0, out.stderr
        text = out.stdout
        assert "zumik-default: 2 of 3 cells fail" in text, text
        assert "b2b s1: goodput 9.999 < gie-default 10; peak 0.933x oracle" in text, text
        assert "random s1: peak 0.960x least-request" in text, text
        assert "x: 1 of 1 cells fail" in text, text  # the variant's file stem names it
        assert "b2b s2: peak 0.933x oracle" in text, text

        only_seed2 = run(d, "--policies", "zumik-default", "--seeds", "2")
        assert "zumik-default: 0 of 1 cells fail" in only_seed2.stdout, only_seed2.stdout

    with tempfile.TemporaryDirectory() as empty:
        out = run(empty)
        assert out.returncode != 0 and "no WORKLOAD-sSEED*.json reports" in out.stderr, out.stderr
    print("seed_targets_test: ok")


if __name__ == "__main__":
    main()
