#!/usr/bin/env python3
"""Checks the routing targets of issue 4 per workload and seed, for every policy in a set of
`zumik bench --virtual --json` reports, and prints per-workload means over the seeds.

Reports are read from DIR as WORKLOAD-sSEED[-ANYTHING].json (several files for one workload and
seed are merged, so variants can be run apart from the baselines; runs are deterministic).
A policy given as a file is named by its file stem.

Targets, per workload-seed cell (goodput compared at the JSON's three decimals):
  every workload      goodput >= gie-default's and >= llm-d-default's
  b2b                 peak and goodput >= 0.95x oracle's; peak >= 1.8x round-robin's
  random, reasoning   peak >= 0.97x least-request's
  codegen             peak output x round-robin is reported, not judged

Usage: seed_targets.py DIR [--policies a,b,...] [--seeds 1-5 | 1,3,7]
"""
import argparse
import collections
import glob
import json
import os
import re
import statistics
import sys

from policy_name import display_name

BASELINES = ["round-robin", "least-request", "gie-default", "llm-d-default", "oracle"]


def parse_seeds(text):
    seeds = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds.update(range(int(lo), int(hi or lo) + 1))
    return seeds


def load(directory, seeds=None):
    """{(workload, seed): {policy: entry}}"""
    cells = collections.defaultdict(dict)
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        m = re.match(r"(.+)-s(\d+)(?:-.*)?\.json$", os.path.basename(path))
        if not m:
            continue
        with open(path) as f:
            report = json.load(f)
        key = (report.get("workload", m.group(1)), int(report.get("seed", m.group(2))))
        if seeds is not None and key[1] not in seeds:
            continue
        for entry in report["policies"]:
            cells[key][display_name(entry["policy"])] = entry
    return cells


def misses(workload, by_policy, policy):
    """The targets `policy` misses in one cell, as short strings."""
    out = []
    p = by_policy[policy]
    good = round(p["goodput_rps_at_slo"], 3)
    peak = p["peak_output_tokens_per_s"]
    for ref in ("gie-default", "llm-d-default"):
        if ref in by_policy and ref != policy:
            theirs = round(by_policy[ref]["goodput_rps_at_slo"], 3)
            if good < theirs:
                out.append(f"goodput {good:g} < {ref} {theirs:g}")
    if workload == "b2b" and "oracle" in by_policy:
        o = by_policy["oracle"]
        if peak < 0.95 * o["peak_output_tokens_per_s"]:
            out.append(f"peak {peak / o['peak_output_tokens_per_s']:.3f}x oracle")
        if o["goodput_rps_at_slo"] > 0 and good < 0.95 * o["goodput_rps_at_slo"]:
            out.append(f"goodput {good / o['goodput_rps_at_slo']:.3f}x oracle")
    if workload == "b2b" and "round-robin" in by_policy:
        rr = by_policy["round-robin"]["peak_output_tokens_per_s"]
        if peak < 1.8 * rr:
            out.append(f"peak {peak / rr:.2f}x round-robin")
    if workload in ("random", "reasoning") and "least-request" in by_policy:
        lr = by_policy["least-request"]["peak_output_tokens_per_s"]
        if peak < 0.97 * lr:
            out.append(f"peak {peak / lr:.3f}x least-request")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir")
    parser.add_argument("--policies", help="comma-separated; default: every policy found")
    parser.add_argument("--seeds", help="e.g. 1-5 or 1,3,7; default: every seed found")
    args = parser.parse_args()
    cells = load(args.dir, parse_seeds(args.seeds) if args.seeds else None)
    if not cells:
        sys.exit(f"no WORKLOAD-sSEED*.json reports in {args.dir}")
    workloads = sorted({w for w, _ in cells})
    names = []
    for by_policy in cells.values():
        names += [n for n in by_policy if n not in names]
    if args.policies:
        names = args.policies.split(",")
    judged = [n for n in names if n not in BASELINES or n in ("gie-default", "llm-d-default")]

    print("Mean over seeds: goodput rps / peak output tok/s (seeds counted)")
    width = max(len(n) for n in names)
    print(f"{'policy':{width}}  " + "  ".join(f"{w:>22}" for w in workloads))
    for name in names:
        row = []
        for w in workloads:
            entries = [c[name] for (cw, _), c in cells.items() if cw == w and name in c]
            if not entries:
                row.append(f"{'-':>22}")
                continue
            g = statistics.mean(e["goodput_rps_at_slo"] for e in entries)
            p = statistics.mean(e["peak_output_tokens_per_s"] for e in entries)
            row.append(f"{g:9.3f} / {p:7.0f} ({len(entries)})")
        print(f"{name:{width}}  " + "  ".join(row))

    if "codegen" in workloads:
        seeds = sorted(s for w, s in cells if w == "codegen")
        print("\ncodegen peak output x round-robin, per seed, and mean")
        print(f"{'policy':{width}}  " + "  ".join(f"s{s:<5}" for s in seeds) + "  mean")
        for name in names:
            ratios = []
            for s in seeds:
                c = cells[("codegen", s)]
                if name in c and "round-robin" in c:
                    ratios.append(c[name]["peak_output_tokens_per_s"] /
                                  c["round-robin"]["peak_output_tokens_per_s"])
                else:
                    ratios.append(None)
            shown = [f"{r:.3f}" if r is not None else "  -  " for r in ratios]
            known = [r for r in ratios if r is not None]
            mean = f"{statistics.mean(known):.3f}" if known else "-"
            print(f"{name:{width}}  " + "  ".join(shown) + f"  {mean}")

    print("\nFailing workload-seed cells")
    for name in judged:
        failing = []
        total = 0
        for (w, s) in sorted(cells):
            if name not in cells[(w, s)]:
                continue
            total += 1
            m = misses(w, cells[(w, s)], name)
            if m:
                failing.append(f"  {w} s{s}: " + "; ".join(m))
        print(f"{name}: {len(failing)} of {total} cells fail")
        for line in failing:
            print(line)


if __name__ == "__main__":
    main()
