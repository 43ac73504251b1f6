#!/usr/bin/env python3
"""Prints the per-workload routing tables of bench/RESULTS.md ("Routing on the virtual fleet")
as Markdown, from the `zumik bench --virtual --json` reports `make bench` writes
(build/bench-results/WORKLOAD.json), so the tables are regenerated, not copied by hand.

Columns: peak output tok/s; x round-robin's peak; goodput (requests/s of the highest stage that
meets the TTFT-p90 SLO) at that stage's rate; knee (lowest rate reaching 95% of the policy's
peak); the stage at round-robin's knee: output tok/s (x round-robin's) and TTFT p90; hit rate;
ideal hit rate (one unbounded cache); ideal bounded by the fleet's KV.

Usage: routing_tables.py DIR [WORKLOAD ...]   (default: every *.json in DIR, make bench order)
"""
import glob
import json
import os
import sys

from policy_name import display_name

ORDER = ["b2b", "low-cache", "multi-chat", "sglang-gsp", "long-doc-qa", "random", "reasoning",
         "codegen"]


def stage_at(policy, rate):
    for stage in policy["stages"]:
        if stage["rate"] == rate:
            return stage
    return None


def table(report):
    policies = report["policies"]
    rr = next((p for p in policies if p["policy"] == "round-robin"), None)
    if rr is None:
        raise SystemExit(f"{report['workload']}: no round-robin entry to compare with")
    unit = "clients" if report.get("arrival") == "concurrency" else "QPS"
    knee = rr["knee_rate"]
    rr_knee = stage_at(rr, knee)
    lines = [f"#### `{report['workload']}` ({report.get('arrival', '?')}; RR knee {knee:g} {unit}; "
             f"seed {report.get('seed', '?')})", "",
             f"| policy | peak out tok/s | × RR | goodput rps @ {unit} | knee | out tok/s at RR knee "
             "(× RR) | TTFT p90 at RR knee (ms) | hit rate | ideal | ideal (fleet KV) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for p in policies:
        at = stage_at(p, knee)
        at_text = "–"
        ttft_text = "–"
        if at is not None and rr_knee is not None:
            ratio = at["output_tokens_per_s"] / rr_knee["output_tokens_per_s"] \
                if rr_knee["output_tokens_per_s"] else 0
            at_text = f"{at['output_tokens_per_s']:,.0f} ({ratio:.2f})"
            ttft_text = f"{at['ttft_ms']['p90']:,.0f}"
        peak_ratio = p["peak_output_tokens_per_s"] / rr["peak_output_tokens_per_s"] \
            if rr["peak_output_tokens_per_s"] else 0
        name = display_name(p["policy"])
        lines.append(
            f"| {name} | {p['peak_output_tokens_per_s']:,.0f} | {peak_ratio:.2f} | "
            f"{p['goodput_rps_at_slo']:.2f} @ {p['goodput_rate']:g} | {p['knee_rate']:g} | {at_text} | "
            f"{ttft_text} | {100 * p['prefix_hit_rate']:.1f}% | {100 * p['ideal_prefix_hit_rate']:.1f}% | "
            f"{100 * p['ideal_fleet_kv_prefix_hit_rate']:.1f}% |")
    return "\n".join(lines)


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    directory = argv[1]
    if len(argv) > 2:
        names = argv[2:]
    else:
        found = {os.path.splitext(os.path.basename(f))[0]
                 for f in glob.glob(os.path.join(directory, "*.json"))}
        names = [w for w in ORDER if w in found] + sorted(found - set(ORDER))
    if not names:
        raise SystemExit(f"no WORKLOAD.json reports in {directory} (run `make bench` first)")
    out = []
    for name in names:
        path = os.path.join(directory, name + ".json")
        try:
            with open(path) as f:
                out.append(table(json.load(f)))
        except (OSError, ValueError, KeyError) as error:
            raise SystemExit(f"{path}: not a zumik bench --virtual report ({error!r})")
    print("\n\n".join(out))


if __name__ == "__main__":
    main(sys.argv)
