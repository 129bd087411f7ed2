"""Issue 20: the safetensors and torch adapters load into the model's own memory (peak RSS of a
load at most the model + 64 MiB, measured in a fresh process) and write no plaintext to disk on
the way (system-call trace, as the Keras adapter is checked)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from frameworks import need
from tracing import written_paths

import envelope

need("numpy")
need("safetensors")
need("torch")

MIB = 1 << 20

SCRIPT = """
import json, os, sys
import torch, envelope
from envelope.models import safetensors as sealed_st, torch as sealed_torch

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

key = envelope.load_private_key(sys.argv[2])
out = sys.argv[1]
torch.manual_seed(0)
model = {f"w{i}": torch.full((1 << 20,), float(i)) for i in range(8)}  # 32 MiB
model["secret"] = torch.tensor([float.fromhex(os.environ["SECRET_FLOAT"])] * 64)
print("BEGIN-ENVELOPE-WORK", flush=True)
sealed_st.save(model, out + "/st.env", key.public_key())
sealed_torch.save(model, out + "/pt.env", key.public_key())
del model
report = {}
for name, load in (("safetensors", lambda: sealed_st.load(out + "/st.env", key)),
                   ("torch", lambda: sealed_torch.load(out + "/pt.env", key))):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS to the current RSS
    before = status("VmRSS")
    loaded = load()
    total = sum(float(t.sum()) for t in loaded.values())  # every page touched
    report[name] = {"peak": status("VmHWM") - before, "total": total}
    del loaded
print(json.dumps(report))
"""


def _run(tmp_path: Path, alice, *, strace: bool) -> tuple[dict[str, dict[str, float]], str]:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    key = tmp_path / "alice.pem"
    key.write_bytes(envelope.private_key_pem(alice))
    script = tmp_path / "work.py"
    script.write_text(SCRIPT)
    command = [sys.executable, str(script), str(out), str(key)]
    trace = tmp_path / "trace.log"
    if strace:
        calls = "openat,open,creat,mkdir,mkdirat,rename,renameat,renameat2,link,linkat,memfd_create"
        command = ["strace", "-f", "-e", f"trace={calls}", "-o", str(trace), *command]
    env = {**os.environ, "SECRET_FLOAT": SECRET.hex(), "TMPDIR": str(tmp_path / "tmpdir")}
    (tmp_path / "tmpdir").mkdir(exist_ok=True)
    run = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    report = json.loads(run.stdout.strip().splitlines()[-1])
    return report, trace.read_text() if strace else ""


SECRET = 1234.5678125  # a float whose bytes are easy to look for


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's peak-RSS reset")
def test_a_load_peaks_at_the_model_plus_64_mib(alice, tmp_path):
    report, _ = _run(tmp_path, alice, strace=False)
    model = 32 * MIB
    for name in ("safetensors", "torch"):
        assert report[name]["total"] == pytest.approx(sum(float(i) * MIB for i in range(8)) + 64 * SECRET)
        # The bound is the model + 64 MiB; a load holding two copies (as before) would be
        # the model + 32 MiB here, so this small model is held to + 16 MiB (worker buffers).
        assert report[name]["peak"] <= model + 16 * MIB, (name, report[name]["peak"] / MIB)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_no_plaintext_file_is_written_by_save_or_load(alice, tmp_path):
    import struct

    _, trace = _run(tmp_path, alice, strace=True)
    lines = trace.splitlines()
    writes = written_paths(trace, ("BEGIN-ENVELOPE-WORK", "work.py"), folders=False)
    out = re.escape(str(tmp_path / "out"))
    allowed = re.compile(rf"^({out}(/\.[^/]*\.partial)?|/dev/null|/proc/self/clear_refs)$")
    assert [w for w in writes if not allowed.match(w)] == []
    assert any("memfd_create" in line for line in lines)  # the torch archive lived in anonymous memory
    secret = struct.pack("<f", SECRET) * 4
    for root, _, files in os.walk(tmp_path):
        for name in files:
            assert secret not in (Path(root) / name).read_bytes(), name
