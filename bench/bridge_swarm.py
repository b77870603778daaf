"""Many lightweight bridges in one asyncio process (for the bridges_connected bench).

Each does what a real bridge does on the wire: answer the challenge with its Ed25519
key, send a snapshot, then ping every `--ping` seconds and read the pongs. Prints one
JSON line once every bridge has connected or failed ({"connected", "failed",
"indices"}), then, when stdin closes, one more ({"pongs"}) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ed25519
from websockets.asyncio.client import connect

from bridge import wire

HANDSHAKES_AT_ONCE = 200


@dataclass
class Stats:
    connected: int = 0
    failed: int = 0
    pongs: int = 0
    indices: list[int] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


async def one_bridge(
    index: int,
    bridge_id: str,
    key: ed25519.Ed25519PrivateKey,
    args: argparse.Namespace,
    stats: Stats,
    gate: asyncio.Semaphore,
    done: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    try:
        async with gate:
            ws = await connect(
                args.url, open_timeout=90, ping_interval=None, compression=None, max_size=2**16
            )
            challenge = wire.decode(await ws.recv())
            assert isinstance(challenge, wire.Challenge)
            signature = key.sign(wire.auth_transcript(args.origin, bridge_id, challenge.nonce))
            await ws.send(wire.encode(wire.Auth(bridge_id, signature, "bench-swarm")))
            welcome = wire.decode(await ws.recv())
            assert isinstance(welcome, wire.Welcome), welcome
            await ws.send(wire.encode(wire.Snapshot(())))
        stats.connected += 1
        stats.indices.append(index)
    except Exception as exc:
        stats.failed += 1
        name = type(exc).__name__
        stats.errors[name] = stats.errors.get(name, 0) + 1
        return
    finally:
        if stats.connected + stats.failed >= args.count:
            done.set()
    try:
        await asyncio.sleep(random.uniform(0, args.ping))
        while not stop.is_set():
            await ws.send(wire.encode(wire.Ping()))
            try:
                async with asyncio.timeout(args.ping):
                    while True:
                        if isinstance(wire.decode(await ws.recv()), wire.Pong):
                            stats.pongs += 1
                            break
                await asyncio.wait_for(stop.wait(), timeout=args.ping)
            except TimeoutError:
                continue
    except Exception:
        return
    finally:
        await ws.close()


async def run(args: argparse.Namespace) -> None:
    lines = open(args.keys).read().split("\n")[: args.count]  # noqa: SIM115
    args.count = len(lines)
    stats, gate = Stats(), asyncio.Semaphore(HANDSHAKES_AT_ONCE)
    done, stop = asyncio.Event(), asyncio.Event()
    tasks = []
    for index, line in enumerate(lines):
        bridge_id, hexkey = line.split()
        key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(hexkey))
        tasks.append(
            asyncio.create_task(one_bridge(index, bridge_id, key, args, stats, gate, done, stop))
        )
    await done.wait()
    print(
        json.dumps(
            {
                "connected": stats.connected,
                "failed": stats.failed,
                "errors": stats.errors,
                "indices": stats.indices,
            }
        ),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the bench closes our stdin
    print(json.dumps({"pongs": stats.pongs}), flush=True)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: list[str]) -> None:
    """Entry point (`python -m bench.bench_bridge swarm ...`)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--origin", required=True)
    parser.add_argument("--keys", required=True)
    parser.add_argument("--count", type=int, default=10**9)
    parser.add_argument("--ping", type=float, default=10.0)
    args = parser.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(run(args))
