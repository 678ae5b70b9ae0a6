#!/usr/bin/env python3
"""Benchmark client: what an unmodified application sees.

  fetch.py throughput HOST:PORT BYTES   -> GET /bytes?n=BYTES, prints bytes/second to EOF
  fetch.py latency HOST:PORT COUNT      -> COUNT sequential connect+GET / round trips, prints p50 and p99 ms
  fetch.py rtt HOST:PORT COUNT          -> COUNT 64-byte echoes on one connection, prints p50 and p99 µs
  fetch.py idle HOST:PORT COUNT PIDFILE -> opens COUNT echo connections, checks each answers, writes its
                                           pid to PIDFILE and holds them until stdin closes
  fetch.py parallel HOST:PORT BYTES N   -> N simultaneous GET /bytes?n=BYTES; prints aggregate bytes/second,
                                           and the slowest and fastest stream's bytes/second
  fetch.py stall HOST:PORT SECONDS      -> starts a 512 MiB download and stops reading it for SECONDS; meanwhile
                                           one fresh request every 0.5 s (5 s deadline each) and one 64 MiB
                                           download; then reads the stalled one to its end. Prints requests
                                           answered, requests tried, 1 if the 64 MiB download was whole, 1 if
                                           the stalled one was
"""
import socket
import sys
import time


def connect(address):
    host, port = address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=120)


def download(address, size, pause=None):
    """GET /bytes?n=SIZE and read it to the end; returns the body bytes received. `pause`, if given,
    is called once after the first MiB (the reader stops for as long as it takes)."""
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
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
            if pause is not None and received >= 1 << 20:
                pause()
                pause = None
    return received


def throughput(address, size):
    start = time.perf_counter()
    received = download(address, size)
    elapsed = time.perf_counter() - start
    if received != size:
        sys.exit(f"short transfer: {received} of {size} bytes")
    print(f"{size / elapsed:.0f}")


def parallel(address, size, count):
    import threading
    rates = []
    failures = []
    barrier = threading.Barrier(count)

    def one():
        barrier.wait()
        start = time.perf_counter()
        try:
            received = download(address, size)
        except OSError as error:
            failures.append(str(error))
            return
        if received != size:
            failures.append(f"short transfer: {received} of {size} bytes")
        rates.append(size / (time.perf_counter() - start))

    threads = [threading.Thread(target=one) for _ in range(count)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        sys.exit("; ".join(failures))
    print(f"{size * count / elapsed:.0f} {min(rates):.0f} {max(rates):.0f}")


def stall(address, seconds):
    import threading
    size = 512 << 20
    outcome = {"answered": 0, "tried": 0, "second": 0, "stalled": 0}
    stalled = threading.Event()

    def others():
        stalled.wait()
        deadline = time.monotonic() + seconds
        second = threading.Thread(target=lambda: outcome.update(second=int(download(address, 64 << 20) == 64 << 20)))
        second.start()
        while time.monotonic() < deadline:
            outcome["tried"] += 1
            try:
                with socket.create_connection(tuple_of(address), timeout=5) as sock:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                    answer = b""
                    while chunk := sock.recv(65536):
                        answer += chunk
                    if answer.startswith(b"HTTP/1.1 200"):
                        outcome["answered"] += 1
            except OSError:
                pass
            time.sleep(0.5)
        second.join()

    helper = threading.Thread(target=others)
    helper.start()

    def pause():
        stalled.set()
        helper.join()

    try:
        outcome["stalled"] = int(download(address, size, pause=pause) == size)
    except OSError:
        helper.join()
    print(outcome["answered"], outcome["tried"], outcome["second"], outcome["stalled"])


def tuple_of(address):
    host, port = address.rsplit(":", 1)
    return host, int(port)


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


def rtt(address, count):
    message = b"x" * 64
    samples = []
    with connect(address) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(count + 20):
            start = time.perf_counter()
            sock.sendall(message)
            got = 0
            while got < len(message):
                chunk = sock.recv(len(message) - got)
                if not chunk:
                    sys.exit("echo closed")
                got += len(chunk)
            if i >= 20:  # the first round trips include the circuit's start
                samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    print(f"{samples[len(samples) // 2]:.1f} {samples[int(len(samples) * 0.99) - 1]:.1f}")


def idle(address, count, pidfile):
    import os
    import resource
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held = []
    for _ in range(count):
        sock = connect(address)
        sock.sendall(b"!")
        if sock.recv(1) != b"!":
            sys.exit("echo did not answer")
        held.append(sock)
    with open(pidfile, "w") as f:
        f.write(str(os.getpid()))
    print(len(held), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    if sys.argv[1] == "idle":
        idle(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        sys.exit(0)
    if sys.argv[1] == "parallel":
        parallel(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        sys.exit(0)
    mode, address, amount = sys.argv[1], sys.argv[2], int(sys.argv[3])
    {"throughput": throughput, "latency": latency, "rtt": rtt, "stall": stall}[mode](address, amount)
