"""Model-call load on keep-alive connections: CONCURRENCY workers for SECONDS.

  llm_load.py TARGET CONCURRENCY SECONDS [MODEL] [--api chat|responses|messages] [--requests N]
TARGET: tcp:HOST:PORT (an upstream or an intercept). Prints "p50_ms p99_ms requests_per_s".
--api picks the request: POST /v1/chat/completions (default), /v1/responses or /v1/messages.
--requests N: each worker sends exactly N requests (SECONDS is ignored; for instruction counts).
(The gateway's private socket serves only its tunneler's process, so the gateway is measured
through the overlay, beside the same upstream hosted without it.)
"""
import asyncio
import json
import sys
import time


async def connect(target: str):
    _, rest = target.split(":", 1)
    host, port = rest.rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def worker(target: str, request: bytes, until: float, samples: list, warmup: int, limit: int | None = None) -> None:
    reader, writer = await connect(target)
    count = 0
    while (count < limit) if limit is not None else (time.perf_counter() < until):
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"{target}: {head[:200]!r}")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        await reader.readexactly(length)
        count += 1
        if count > warmup:
            samples.append(time.perf_counter() - started)
    writer.close()


REQUESTS = {
    "chat": ("/v1/chat/completions", lambda model: {"model": model, "messages": [{"role": "user", "content": "ping"}]}),
    "responses": ("/v1/responses", lambda model: {"model": model, "input": "ping", "store": False}),
    "messages": ("/v1/messages", lambda model: {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "ping"}]}),
}


async def main() -> None:
    args = sys.argv[1:]
    api = "chat"
    limit = None
    if "--requests" in args:
        index = args.index("--requests")
        limit = int(args[index + 1])
        del args[index:index + 2]
    if "--api" in args:
        index = args.index("--api")
        api = args[index + 1]
        del args[index:index + 2]
    target, concurrency, seconds = args[0], int(args[1]), float(args[2])
    model = args[3] if len(args) > 3 else "gpt-mini"
    path, make = REQUESTS[api]
    body = json.dumps(make(model)).encode()
    request = (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nAuthorization: Bearer none\r\n"
               b"anthropic-version: 2023-06-01\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    samples: list[float] = []
    started = time.perf_counter()
    until = started + seconds
    if limit is not None:
        await asyncio.gather(*(worker(target, request, until, samples, 0, limit) for _ in range(concurrency)))
        print(len(samples))
        return
    await asyncio.gather(*(worker(target, request, until, samples, 20) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    samples.sort()
    p50 = samples[len(samples) // 2] * 1000
    p99 = samples[int(len(samples) * 0.99) - 1] * 1000
    print(f"{p50:.4f} {p99:.4f} {(len(samples) + 20 * concurrency) / elapsed:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
