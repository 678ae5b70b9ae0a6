#!/usr/bin/env python3
"""Benchmark client: what an unmodified application sees.

  fetch.py throughput HOST:PORT BYTES   -> GET /bytes?n=BYTES, prints bytes/second to EOF
  fetch.py latency HOST:PORT COUNT      -> COUNT sequential connect+GET / round trips, prints p50 and p99 ms
"""
import socket
import sys
import time


def connect(address):
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=120)


def throughput(address, size):
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    start = time.perf_counter()
    with connect(address) as sock:
        sock.sendall(f"GET /bytes?n={size} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        received = 0
        header = b""
        while True:
            n = sock.recv_into(view)
            if n == 0:
                break
            if header is not None:
                header += bytes(view[:n])
                split = header.find(b"\r\n\r\n")
                if split < 0:
                    continue
                received = len(header) - split - 4
                header = None
            else:
                received += n
    elapsed = time.perf_counter() - start
    if received != size:
        sys.exit(f"short transfer: {received} of {size} bytes")
    print(f"{size / elapsed:.0f}")


def latency(address, count):
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        with connect(address) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            while sock.recv(65536):
                pass
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    print(f"{samples[len(samples) // 2]:.3f} {samples[int(len(samples) * 0.99) - 1]:.3f}")


if __name__ == "__main__":
    mode, address, amount = sys.argv[1], sys.argv[2], int(sys.argv[3])
    (throughput if mode == "throughput" else latency)(address, amount)
