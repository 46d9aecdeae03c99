"""Sampling the server under load with py-spy, and folding the samples into a hot-spot table.

py-spy attaches to the running server by pid (no code change, ``--nonblocking`` so the target
is never paused) and writes collapsed stacks (``--format raw``): one line per distinct stack,
``frame;frame;...;frame count``, each frame ``function (file:line)``. Idle threads are left
out by py-spy, so a sample is a thread on CPU (or waiting on the GIL, unless ``--gil``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

__all__ = ["Sampler", "hot_spots", "py_spy_path", "snapshot_source", "thread_names"]

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy_path() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def snapshot_source(dest: Path) -> None:
    """Copy the trailkeep package as it is now, so profile ``file:line``s stay resolvable
    while others keep editing the tree."""
    import importlib.util

    spec = importlib.util.find_spec("trailkeep")
    if spec is None or spec.origin is None:
        return
    shutil.copytree(Path(spec.origin).parent, dest, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip


class Sampler:
    """``py-spy record`` on one pid from :meth:`start` to :meth:`stop`."""

    def __init__(self, pid: int, output: Path, *, rate: int = 200, gil: bool = False) -> None:
        exe = py_spy_path()
        if exe is None:
            raise RuntimeError("py-spy not found: pip install py-spy")
        self.output = output
        self._argv = [exe, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
                      "--nonblocking", "--threads", "--output", str(output)]  # fmt: skip
        if gil:
            self._argv.append("--gil")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._log = open(f"{self.output}.log", "wb")  # noqa: SIM115
        self._proc = subprocess.Popen(self._argv, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)  # fmt: skip

    def stop(self) -> None:
        """SIGINT makes py-spy write its output and exit; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        except ProcessLookupError:
            pass
        finally:
            self._log.close()


def _short(path: str) -> str:
    for marker in ("/src/", "/site-packages/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


_THREAD = re.compile(r"^thread \((?P<tid>\d+)\)(?::\s*(?P<name>.*))?$")
# Inclusive time is shown for our own code (minus the wrappers every request passes through)
# and for the framework steps that do real work per request.
_WRAPPERS = ("cli/", "api/metrics.py", "api/limits.py", "_write_loop")
_FRAMEWORK = ("Request.json", "Request.body", "solve_dependencies", "request_body_to_args",
              "serialize_response", "validate_python", "model_dump", "run_in_threadpool",
              "JSONDecoder.decode", "to_thread", "wrap_future", "Response.__init__")  # fmt: skip
#: Frames where a thread waits rather than works (py-spy may still count them as active).
WAITS = ("Condition.wait", "Runner.run", "Queue.get", "Event.wait")


def _stacks(raw: Path) -> list[tuple[int, str, list[str]]]:
    """``(tid, thread name, frames)`` per sampled stack, one entry per sample count unit."""
    out = []
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        m = _THREAD.match(frames[0])
        tid, name = (int(m["tid"]), (m["name"] or "").strip()) if m else (0, "?")
        out.append((tid, name, [f for f in frames[1:] if _FRAME.match(f)], int(count_text)))
    return [(t, n, f) for t, n, f, c in out for _ in range(c)]  # counts are small ints


def thread_names(raw: Path) -> dict[int, str]:
    """Thread id → Python thread name, as py-spy saw them."""
    return {tid: name for tid, name, _ in _stacks(raw)} if raw.exists() else {}


def _key(frame: str, line: bool) -> str:
    m = _FRAME.match(frame)
    assert m is not None
    where = _short(m["file"]) + (f":{m['line']}" if line and m["line"] else "")
    return f"{m['func']} ({where})"


def hot_spots(raw: Path, top: int = 12) -> str:
    """Per thread group: sample share, hottest lines (self) and hottest functions (inclusive).

    Shares are of all samples of the process. py-spy counts a thread as active when the OS
    says it is running or in uninterruptible (disk) sleep, so a writer blocked in ``fsync``
    is "active": compare with the per-thread CPU the benchmark prints.
    """
    stacks = _stacks(raw)
    if not stacks:
        return f"  (no samples in {raw})"
    total = len(stacks)
    groups: dict[str, list[list[str]]] = {}
    for _, name, frames in stacks:
        group = "AnyIO worker threads" if name.startswith("AnyIO worker") else name
        groups.setdefault(group, []).append(frames)
    rows = [
        f"  {total} samples; by thread: "
        + ", ".join(
            f"{g} {len(v) / total:.0%}"
            for g, v in sorted(groups.items(), key=lambda kv: -len(kv[1]))
        )
    ]
    for group, members in sorted(groups.items(), key=lambda kv: -len(kv[1]))[:3]:
        self_lines: Counter[str] = Counter(_key(f[-1], True) for f in members if f)
        inclusive: Counter[str] = Counter()
        for frames in members:
            inclusive.update({_key(f, False) for f in frames})
        rows.append(f"  [{group}] self time by line (share of all samples):")
        rows += [f"    {c / total:6.1%}  {k}" for k, c in self_lines.most_common(top)]
        rows.append(f"  [{group}] inclusive: our code and framework steps:")
        picked = [(k, c) for k, c in inclusive.most_common(400)
                  if ("trailkeep/" in k and not any(w in k for w in _WRAPPERS))
                  or k.startswith(_FRAMEWORK)]  # fmt: skip
        rows += [f"    {c / total:6.1%}  {k}" for k, c in picked[:top]]
    return "\n".join(rows)
