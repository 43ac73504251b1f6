#!/usr/bin/env python3
"""The chart's dashboard and recording rules against a real Prometheus.

Starts, on loopback: a `zumik sim` fleet (vLLM, LMCache and DCGM metric names), `zumik epp` in
front of it when this build has it, and Prometheus scraping them with the labels the chart's
PodMonitor/ServiceMonitor add (cluster, plus namespace/pod as the operator adds them). Then:
  - `promtool check rules` on the groups of the rendered PrometheusRule;
  - sends completions through the stack so every series moves;
  - evaluates every query of the rendered dashboard (and its variables) through Prometheus's
    HTTP API and requires data, filtered to the cluster label (another cluster returns none);
  - requires every recording rule to produce series.

usage: observability_test.py --zumik ZUMIK --helm HELM --repo REPO
"""

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

CLUSTER = "byc_obs7"
NAMESPACE = "zumik-portable"
TTFT_SLA_MS = 400
REPLICAS = 3
DEADLINE_S = 25.0


class Failure(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def consecutive_free_ports(n):
    for _ in range(50):
        base = random.randint(20000, 60000 - n)
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise Failure("no free port range")


def wait_http(url, timeout=15.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise Failure(f"{proc.args[:2]} exited with {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return r.read()
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            pass
        time.sleep(0.1)
    raise Failure(f"{url} not ready after {timeout}s")


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def post_json(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def render_chart(helm, repo):
    """The dashboard JSON and the PrometheusRule groups exactly as the chart renders them."""
    args = [helm, "template", "us-east", os.path.join(repo, "infra", "k8s-portable"),
            "--namespace", NAMESPACE,
            "--set", "model.served=meta-llama/Llama-3.1-8B-Instruct",
            "--set", f"aibrix.autoscaler.targetTtftMs={TTFT_SLA_MS}",
            "--set", f"operator.clusterId={CLUSTER}",
            "--set", "monitoring.prometheusRule.enabled=true",
            "--set", "skipCapabilityChecks=true",
            "--show-only", "templates/dashboard-configmap.yaml",
            "--show-only", "templates/prometheusrule.yaml"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise Failure(f"helm template failed: {result.stderr}")
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    dashboard = next(d for d in docs if d["kind"] == "ConfigMap")
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    return json.loads(dashboard["data"]["zumik-portable.json"]), rule["spec"]["groups"]


def dashboard_queries(dashboard):
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((f"{panel['title']} / {target['refId']}", target["expr"]))
    return out


def substitute(expr, dashboard, cluster):
    sla = next(v for v in dashboard["templating"]["list"] if v["name"] == "ttft_sla_ms")["query"]
    return (expr.replace("$__rate_interval", "1m").replace("$cluster", cluster)
            .replace("$model", ".*").replace("$ttft_sla_ms", sla))


class Stack:
    def __init__(self, zumik, workdir):
        self.zumik = zumik
        self.workdir = workdir
        self.procs = []
        self.epp = None

    def start(self, cmd, log):
        f = open(os.path.join(self.workdir, log), "w")
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def stop(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def log_tail(self, log, n=2000):
        try:
            with open(os.path.join(self.workdir, log)) as f:
                return f.read()[-n:]
        except OSError:
            return ""


def epp_usage(zumik):
    """The `zumik epp` flags this test needs, or None (with the reason) when the build lacks them."""
    try:
        result = subprocess.run([zumik, "epp", "--help"], capture_output=True, text=True, timeout=10)
    except OSError as e:
        return None, str(e)
    text = result.stdout + result.stderr
    if result.returncode != 0:
        return None, f"`zumik epp --help` exited {result.returncode}"
    missing = [f for f in ("--endpoints", "--listen-http", "--metrics-port") if f not in text]
    if missing:
        return None, f"`zumik epp` lacks {missing}"
    return text, None


def run(options):
    dashboard, groups = render_chart(options.helm, options.repo)
    queries = dashboard_queries(dashboard)
    workdir = tempfile.mkdtemp(prefix="zumik-obs-")
    stack = Stack(options.zumik, workdir)
    try:
        # promtool on the rendered rule groups, unchanged.
        rules_path = os.path.join(workdir, "rules.yaml")
        with open(rules_path, "w") as f:
            yaml.safe_dump({"groups": groups}, f)
        result = subprocess.run([options.promtool, "check", "rules", rules_path], capture_output=True, text=True,
                                timeout=30)
        if result.returncode != 0:
            raise Failure(f"promtool check rules:\n{result.stdout}{result.stderr}")
        print(f"ok    promtool check rules: {result.stdout.strip().splitlines()[-1]}")
        # The same groups evaluated every second so the test does not wait 15-30 s per group.
        fast = [dict(g, interval="1s") for g in groups]
        fast_path = os.path.join(workdir, "rules-fast.yaml")
        with open(fast_path, "w") as f:
            yaml.safe_dump({"groups": fast}, f)

        for attempt in range(3):
            # sim serves replica i on port base+i: another process may take one meanwhile.
            base = consecutive_free_ports(REPLICAS)
            sim = stack.start([options.zumik, "sim", "--replicas", str(REPLICAS), "--port", str(base),
                               "--host", "127.0.0.1", "--lmcache"], "sim.log")
            try:
                for i in range(REPLICAS):
                    wait_http(f"http://127.0.0.1:{base + i}/metrics", proc=sim)
                break
            except Failure:
                if attempt == 2:
                    raise
                sim.kill()
                sim.wait()
        model = get_json(f"http://127.0.0.1:{base}/v1/models")["data"][0]["id"]

        usage, why_no_epp = epp_usage(options.zumik)
        epp_http = epp_metrics = None
        if usage:
            epp_http, epp_metrics = free_port(), free_port()
            endpoints = ",".join(f"127.0.0.1:{base + i}" for i in range(REPLICAS))
            epp = stack.start([options.zumik, "epp", "--endpoints", endpoints, "--listen-http", str(epp_http),
                               "--metrics-port", str(epp_metrics)], "epp.log")
            wait_http(f"http://127.0.0.1:{epp_metrics}/metrics", proc=epp)
            print(f"ok    zumik epp serving on 127.0.0.1:{epp_http}, metrics :{epp_metrics}")
        else:
            print(f"note  scraping the sim fleet only, no EPP: {why_no_epp}; EPP (llm_d_epp_*) queries skipped")

        prom_port = free_port()
        scrape = [{
            "job_name": "vllm",
            "static_configs": [{"targets": [f"127.0.0.1:{base + i}"],
                                "labels": {"cluster": CLUSTER, "namespace": NAMESPACE,
                                           "pod": f"us-east-k8s-portable-predictor-{i}"}}
                               for i in range(REPLICAS)],
        }]
        if epp_metrics:
            scrape.append({"job_name": "epp", "static_configs": [{
                "targets": [f"127.0.0.1:{epp_metrics}"],
                "labels": {"cluster": CLUSTER, "namespace": NAMESPACE, "pod": "us-east-k8s-portable-epp-0"}}]})
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "rule_files": [fast_path], "scrape_configs": scrape}
        config_path = os.path.join(workdir, "prometheus.yml")
        with open(config_path, "w") as f:
            yaml.safe_dump(config, f)
        prom = stack.start([options.prometheus, f"--config.file={config_path}",
                            f"--storage.tsdb.path={os.path.join(workdir, 'tsdb')}",
                            f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"], "prometheus.log")
        api = f"http://127.0.0.1:{prom_port}"
        wait_http(f"{api}/-/ready", timeout=20, proc=prom)

        # Traffic: a few shared prefixes so prefix and LMCache counters move, through the EPP when
        # there is one.
        targets = ([f"http://127.0.0.1:{epp_http}"] if epp_http
                   else [f"http://127.0.0.1:{base + i}" for i in range(REPLICAS)])
        stop = threading.Event()
        errors = []

        def client(k):
            n = 0
            while not stop.is_set():
                prefix = f"System prompt {k % 3}: " + "you are a careful assistant. " * 40
                try:
                    post_json(f"{targets[n % len(targets)]}/v1/completions",
                              {"model": model, "prompt": prefix + f"question {n}", "max_tokens": 8})
                except (urllib.error.URLError, ConnectionError, socket.timeout) as e:
                    errors.append(str(e))
                n += 1
        threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(6)]
        for t in threads:
            t.start()

        def query(expr):
            url = f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            body = get_json(url)
            if body.get("status") != "success":
                raise Failure(f"query failed: {expr}: {body}")
            return body["data"]["result"]

        wanted = [(name, expr) for name, expr in queries if epp_metrics or "llm_d_epp_" not in expr]
        skipped = [name for name, expr in queries if (name, expr) not in wanted]
        records = [r["record"] for g in groups for r in g["rules"]]
        deadline = time.monotonic() + DEADLINE_S
        pending = {}
        while True:
            pending = {}
            for name, expr in wanted:
                q = substitute(expr, dashboard, CLUSTER)
                if not query(q):
                    pending[name] = q
            for record in records:
                if not query(record):
                    pending[f"recording rule {record}"] = record
            values = get_json(f"{api}/api/v1/label/cluster/values?" +
                              urllib.parse.urlencode({"match[]": "vllm:num_requests_running"}))["data"]
            if CLUSTER not in values:
                pending["variable cluster"] = "label_values(vllm:num_requests_running, cluster)"
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=35)
        if errors:
            raise Failure(f"{len(errors)} requests failed, e.g. {errors[0]}")
        if pending:
            raise Failure("no data after %.0fs for:\n  %s" % (DEADLINE_S, "\n  ".join(
                f"{k}: {v}" for k, v in pending.items())))
        for name, _ in wanted:
            print(f"ok    dashboard query has data: {name}")
        for record in records:
            print(f"ok    recording rule produces series: {record}")
        for name in skipped:
            print(f"skip  {name} (needs zumik epp)")
        # The cluster filter really filters: another cluster id selects nothing.
        name, expr = wanted[0]
        if query(substitute(expr, dashboard, "byc_other")):
            raise Failure(f"{name}: cluster=~\"byc_other\" returned data; the cluster label does not filter")
        print("ok    cluster variable filters (byc_other: no data)")
        return 0
    except Failure as e:
        print(f"FAIL  {e}")
        for log in ("sim.log", "epp.log", "prometheus.log"):
            tail = stack.log_tail(log)
            if tail:
                print(f"--- {log} (tail)\n{tail}")
        return 1
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zumik", required=True)
    parser.add_argument("--helm", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    parser.add_argument("--promtool", default=shutil.which("promtool") or "/usr/bin/promtool")
    options = parser.parse_args()
    for tool in (options.zumik, options.helm, options.prometheus, options.promtool):
        if not os.access(tool, os.X_OK):
            print(f"FAIL  {tool} is not executable (scripts/bootstrap installs prometheus and helm)")
            return 1
    return run(options)


if __name__ == "__main__":
    sys.exit(main())
