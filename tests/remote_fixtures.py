"""Real parts for the remote tests: an S3 server on loopback (moto's server mode) and keys on disk.

Each test module imports what it uses from here. Servers run in a child process that the tests
start and stop: nothing needs to be running beforehand, and stopping one is a real network failure.
tools/test.sh sets ENVELOPE_REQUIRE_FRAMEWORKS=1: there a missing extra fails instead of skipping.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import envelope


def need(module: str) -> ModuleType:
    """Import an optional dependency, or skip (fail under ENVELOPE_REQUIRE_FRAMEWORKS=1)."""
    if os.environ.get("ENVELOPE_REQUIRE_FRAMEWORKS"):
        return importlib.import_module(module)
    return pytest.importorskip(module)


# The child prints its port, then serves until its stdin closes (or it is killed).
_SERVER = r"""
import logging, sys
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from moto.server import ThreadedMotoServer
if sys.argv[1:] == ["ranged"]:
    exec(RANGED)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


# moto answers a ranged GET by reading the whole object and slicing it (moto 5.2: 0.27 s per GET
# of a 256 MiB object, whatever the range), so a reader's cost there counts its GETs. S3 serves a
# range in time proportional to the range. With ranged_gets=True (tools/bench_remote.py reports
# both), a single-range GET reads only its range from moto's buffer, like S3; nothing else changes.
_RANGED = r"""
import threading
from moto.s3 import models, responses
_ranged = threading.local()
_stored = models.FakeKey.value

class _Range:
    def __init__(self, key):
        self._key = key
    def __len__(self):
        return self._key.contentsize
    def __getitem__(self, item):
        start, stop, _ = item.indices(len(self))
        with self._key.lock:
            self._key._value_buffer.seek(start)
            return self._key._value_buffer.read(max(0, stop - start))

def _value(key):
    return _Range(key) if getattr(_ranged, "on", False) else _stored.fget(key)

models.FakeKey.value = property(_value, _stored.fset)
_key_response = responses.S3Response.key_response

def key_response(self, request, full_url, headers):
    spec = request.headers.get("range", "")
    _ranged.on = request.method == "GET" and spec.startswith("bytes=") and "," not in spec and spec[6:7].isdigit()
    try:
        return _key_response(self, request, full_url, headers)
    finally:
        _ranged.on = False

responses.S3Response.key_response = key_response
"""


class MotoServer:
    """moto's S3 server in a child process, on a free loopback port."""

    def __init__(self, *, ranged_gets: bool = False) -> None:
        script = f"RANGED = {_RANGED!r}\n{_SERVER}"
        command = [sys.executable, "-c", script, *(["ranged"] if ranged_gets else [])]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError("moto server did not start")
        self.endpoint = f"http://127.0.0.1:{int(line)}"

    def options(self, **extra: Any) -> dict[str, Any]:
        """s3fs options for this server: dummy credentials, no retries, short timeouts."""
        return {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-west-2"},
            "config_kwargs": {"retries": {"max_attempts": 1, "mode": "standard"}, "connect_timeout": 2},
            **extra,
        }

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(timeout=10)
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    need("moto.server")
    need("s3fs")
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bucket(moto_server: MotoServer) -> str:
    s3fs = need("s3fs")
    s3fs.S3FileSystem(**moto_server.options()).mkdir("envelope-tests")
    return "envelope-tests"


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A private key and the path of its unencrypted PEM file (mode 0600), as workers would hold it."""
    key = envelope.generate_private_key(2048)
    path = tmp_path_factory.mktemp("keys") / "worker.pem"
    path.write_bytes(envelope.private_key_pem(key))
    path.chmod(0o600)
    return key, path
