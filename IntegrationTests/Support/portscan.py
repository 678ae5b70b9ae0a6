#!/usr/bin/env python3
"""Tries a TCP connection to every port of HOST; prints the ports that accepted one.

Ports are tried in batches as large as the descriptor limit allows; a port whose connection
neither succeeds nor fails within WAIT seconds (a firewall dropping it) counts as refused."""
import resource
import select
import socket
import sys
import time

host = sys.argv[1]
wait = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
batch = max(256, min(hard, 70000) - 64)
accepted = []
for first in range(1, 65536, batch):
    pending = {}
    poller = select.poll()
    for port in range(first, min(first + batch, 65536)):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        pending[s.fileno()] = (s, port)
        poller.register(s.fileno(), select.POLLOUT | select.POLLERR | select.POLLHUP)
    deadline = time.time() + wait
    while pending and time.time() < deadline:
        for fd, _ in poller.poll(50):
            s, port = pending.pop(fd)
            poller.unregister(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                accepted.append(port)
            s.close()
    for s, _ in pending.values():
        s.close()
print(" ".join(str(p) for p in sorted(accepted)))
