#!/usr/bin/env python3
"""scripts/gateway-vs-nginx end to end, briefly: it measures the gateway (and nginx, when
installed) in front of a sim fleet it starts on loopback, and refuses to run when one of its
ports is taken (a leftover server would otherwise answer in place of what is measured).

Usage: gateway_vs_nginx_test.py REPO ZUMIK_BIN LOADGEN_BIN
"""
import os
import shutil
import socket
import subprocess
import sys

OFFSETS = [0, 1, 2, 3, 110, 200]  # the fleet (4 replicas), the gateway, nginx


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_base():
    for base in range(21000, 40000, 317):
        if all(port_free(base + offset) for offset in OFFSETS):
            return base
    raise SystemExit("no free port range")


def run(repo, env):
    return subprocess.run([os.path.join(repo, "scripts/gateway-vs-nginx"), "4", "1", "1"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=120)


def main():
    repo, zumik, loadgen = sys.argv[1:4]
    base = free_base()
    env = dict(os.environ, NEWBIN=zumik, LOADGEN=loadgen, PORT_BASE=str(base))
    result = run(repo, env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [l for l in result.stdout.splitlines() if not l.startswith("#")]
    names = [l.split()[0] for l in lines]
    expected = ["epp", "nginx"] if shutil.which("nginx") else ["epp"]
    assert names == expected, result.stdout + result.stderr
    for line in lines:
        fields = line.split()
        values = dict(zip(fields[2::2], fields[3::2]))
        assert values["errors"] == "0", line
        assert float(values["rps"]) > 0, line
        total, user, system = (float(values[key])
                               for key in ("proxy_cpu_us_per_req", "user", "system"))
        assert total > 0 and user >= 0 and system >= 0, line
        assert abs(user + system - total) <= 0.15, line  # each is rounded to 0.1 us

    # A server already on the gateway's port: refused before anything starts.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 110))
        squatter.listen()
        result = run(repo, env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {base + 110}" in result.stderr and "PORT_BASE" in result.stderr, result.stderr
    assert "rps" not in result.stdout, result.stdout
    print("ok")


if __name__ == "__main__":
    main()
