#!/usr/bin/env python3
"""Controller failover on a running topology/ha.yaml network (two controllers on PostgreSQL).

  failover.py STATE BIN ROUNDS -> each round SIGKILLs one controller (alternating), times how long
                                  until a new dial (a new circuit) through the laptop's intercept is
                                  answered, then restarts it and waits until the routers are back on it.
                                  Prints the median failover time and the median dial time with both
                                  controllers up (the reference), in milliseconds.
"""
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time


def dial(address, timeout=2.0):
    """A new connection through the overlay and one request; True if it was answered."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def main():
    state, binaries, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    record = json.load(open(os.path.join(state, "topology.json")))
    address = record["intercepts"][0]["address"]
    controllers = [p for p in record["processes"] if p["kind"] == "controller"]
    pids = {p["name"]: p["pid"] for p in controllers}
    directories = {p["name"]: os.path.join(state, "controller" if p["name"] == "controller" else "controllers/" + p["name"])
                   for p in controllers}
    dials, failovers = [], []
    for _ in range(50):
        start = time.perf_counter()
        if dial(address):
            dials.append(time.perf_counter() - start)
    restarted = []
    for round_ in range(rounds):
        name = controllers[round_ % len(controllers)]["name"]
        os.kill(pids[name], signal.SIGKILL)
        killed = time.perf_counter()
        while not dial(address, timeout=1.0):
            if time.perf_counter() - killed > 30:
                sys.exit("no dial succeeded within 30 s of killing " + name)
        failovers.append(time.perf_counter() - killed)
        log = open(os.path.join(state, "logs", f"{name}-restarted.log"), "a")
        process = subprocess.Popen([os.path.join(binaries, "portless-controller"), "run", "--state", directories[name]],
                                   stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        pids[name] = process.pid
        restarted.append(process)
        time.sleep(4)  # routers redial with at most 2 s of backoff
    for process in restarted:
        process.kill()
    print(f"{statistics.median(failovers) * 1000:.1f} {statistics.median(dials) * 1000:.2f}")


if __name__ == "__main__":
    main()
