"""Replaying a bundle's examples in the environment being validated: `python -m
modelwire.runtime.replay BUNDLE`.

It starts `modelwire serve BUNDLE` as a child on a loopback port, waits for it to
announce that it is SERVING (within the load timeout), sends every request of
`modelwire.bundle.examples.example_calls` over gRPC a few times, stops the server,
and prints one `modelwire.bundle.trial.Trial` on stdout: load time, the answers as
wire bytes, the latencies, the Python and distributions of the environment, and the
server's last log lines. It judges nothing: the validator compares the answers on its
side. It runs where the model runs (a fresh venv, or a container without network), so
the calls never leave that environment.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import importlib.metadata as md
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import grpc

from modelwire.bundle import Bundle
from modelwire.bundle.examples import ExampleCall, example_calls
from modelwire.bundle.trial import TRIAL_MARKER, Answer, Stage, Trial
from modelwire.hosting.process import ENV_PARENT_PID
from modelwire.runtime.server import LISTENING

__all__ = ["main", "replay"]

_TAIL = 40  # log lines kept for the trial
_MAX_MESSAGE = 256 * 1024 * 1024


class _Server:
    """`modelwire serve BUNDLE` as a child: its stdout scanned for the listening line, its
    stderr passed on to ours (the environment's log) and its tail kept."""

    def __init__(self, bundle: Path, memory: int | None = None) -> None:
        argv = [sys.executable, "-m", "modelwire", "serve", str(bundle)]
        argv += ["--host", "127.0.0.1", "--port", "0", "--log-format", "json"]
        argv += ["--no-http"]  # replay calls gRPC; a fixed HTTP port (8080) may be taken
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELWIRE_")}
        env[ENV_PARENT_PID] = str(os.getpid())  # the server dies with us
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=env,
        )
        if memory:
            import resource

            # the server's address space, set before it unpickles anything (that takes
            # its imports first); a model that allocates past it gets MemoryError
            resource.prlimit(self.proc.pid, resource.RLIMIT_AS, (memory, memory))
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL)
        self.address: str | None = None
        self.listening = threading.Event()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read(self, stream: IO[str], is_stdout: bool) -> None:
        for line in stream:
            if is_stdout and self.address is None and line.startswith(LISTENING):
                self.address = line[len(LISTENING) :].strip()
                self.listening.set()
                continue
            self.tail.append(line.rstrip("\n"))
            sys.stderr.write(line)
        if is_stdout:
            self.listening.set()  # it ended: nobody waits any longer

    def wait_listening(self, timeout: float) -> str | None:
        self.listening.wait(timeout)
        return self.address

    def stop(self) -> int | None:
        """SIGTERM (SIGKILL after 10 s); the exit status if it had ended on its own."""
        ended = self.proc.poll()
        if ended is None and self.listening.is_set() and self.address is None:
            # its stdout ended without the listening line: it is exiting, let it finish
            with contextlib.suppress(subprocess.TimeoutExpired):
                ended = self.proc.wait(5)
        if ended is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self._readers:
            t.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return ended


def _call(
    channel: grpc.Channel, path: str, call: ExampleCall, repeat: int, timeout: float
) -> Answer:
    rpc: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(path)
    responses: list[bytes] = []
    latencies: list[float] = []
    status, details = "OK", ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        try:
            reply = rpc(call.request, timeout=timeout)
        except grpc.RpcError as exc:
            latencies.append((time.perf_counter() - t0) * 1e3)
            code = exc.code() if isinstance(exc, grpc.Call) else None
            status = code.name if code is not None else "UNKNOWN"
            details = (exc.details() if isinstance(exc, grpc.Call) else str(exc)) or ""
            break
        latencies.append((time.perf_counter() - t0) * 1e3)
        if reply not in responses:
            responses.append(reply)
    return Answer(
        call.method,
        call.index,
        hashlib.sha256(call.request).hexdigest(),
        status,
        details,
        tuple(responses),
        tuple(round(x, 3) for x in latencies),
    )


def _packages() -> tuple[tuple[str, str], ...]:
    found = {(d.metadata["Name"] or "?", d.version) for d in md.distributions()}
    return tuple(sorted(found, key=lambda p: p[0].lower()))


def replay(
    bundle: str | os.PathLike[str],
    *,
    load_timeout: float,
    call_timeout: float = 30.0,
    repeat: int = 5,
    time_limit: float | None = None,
    memory: int | None = None,
) -> Trial:
    """Serve `bundle` in a child, send it every example `repeat` times, stop it.

    Args:
        bundle: the bundle (directory or zip); its digests are checked here, nothing
            is unpickled in this process.
        load_timeout: seconds the server has to report SERVING.
        call_timeout: the deadline of each call, in seconds.
        repeat: how many times each request is sent (for the latencies).
        time_limit: seconds the whole replay may take (None: no limit); past it, the
            server is stopped and the trial says so.
        memory: the server's address-space limit in bytes (None: none).
    """
    end = time.monotonic() + time_limit if time_limit is not None else None

    def left(limit: float) -> float:
        return limit if end is None else max(0.0, min(limit, end - time.monotonic()))

    path = Path(bundle)
    b = Bundle(path)
    schema = b.manifest.schema
    calls = example_calls(b.manifest, b.read)
    service = f"{schema.package}.{schema.service}"
    server = _Server(path, memory)
    answers: list[Answer] = []
    stage, load_seconds, calls_seconds, note = Stage.LOADING, None, None, ""
    try:
        address = server.wait_listening(left(load_timeout))
        if address is not None:
            load_seconds = round(time.monotonic() - server.started, 3)
            stage = Stage.CALLING
            options = [
                ("grpc.max_send_message_length", _MAX_MESSAGE),
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ]
            t0 = time.monotonic()
            with grpc.insecure_channel(address, options=options) as channel:
                for call in calls:
                    if server.proc.poll() is not None or left(1.0) <= 0:
                        break
                    rpc = f"/{service}/{schema.method(call.method).rpc}"
                    answers.append(_call(channel, rpc, call, repeat, left(call_timeout)))
            calls_seconds = round(time.monotonic() - t0, 3)
            if server.proc.poll() is None and len(answers) == len(calls):
                stage = Stage.DONE
        elif server.proc.poll() is None:
            note = f"no SERVING within {load_timeout:g} s"
    finally:
        exit_status = server.stop()
    out_of_time = end is not None and stage is not Stage.DONE and time.monotonic() >= end
    return Trial(
        stage=stage,
        load_seconds=load_seconds,
        calls_seconds=calls_seconds,
        exit_status=exit_status,
        answers=tuple(answers),
        python=platform.python_version(),
        packages=_packages(),
        log_tail=tuple(server.tail),
        out_of_time=out_of_time,
        note=note,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modelwire.runtime.replay",
        description="Serve BUNDLE, send it its examples, print the trial as JSON.",
    )
    parser.add_argument("bundle")
    parser.add_argument("--load-timeout", type=float, default=60.0)
    parser.add_argument("--call-timeout", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument(
        "--memory", type=int, default=0, help="address-space limit of the server, in bytes"
    )
    args = parser.parse_args(argv)
    trial = replay(
        args.bundle,
        load_timeout=args.load_timeout,
        call_timeout=args.call_timeout,
        repeat=args.repeat,
        time_limit=args.time_limit,
        memory=args.memory or None,
    )
    sys.stdout.write(TRIAL_MARKER + json.dumps(trial.to_json()) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
