"""``--profile``: py-spy samples the ``serve`` process while wrk drives it, then the top costs.

py-spy (``pip install py-spy``, in the dev extra) attaches to the running pid, so the hub runs
as measured (py-spy pauses it briefly for each of 200 samples a second). ``--gil`` keeps only
the samples of the thread holding the GIL: the Python work that decides how many requests one
process can serve (waiting on the database, the network or a lock is not counted), so the
shares below are of the time the process spent running Python. The collapsed stacks are kept
in the current directory (``profile-<db>-<scenario>.txt``, for flame graphs) and summarised:
by function, its own time (the frame on top) and its inclusive time (anywhere on the stack).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

_RATE = ("--rate", "200", "--output")
_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "wt-bench/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarise(collapsed: Path, top: int = 20) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    modules: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        stack, count = match[1].split(";"), int(match[2])
        frames = [_frame_name(f) for f in stack[1:]]  # the first entry names the process
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
        # What the top frame belongs to: a package (site-packages) or our own module.
        module = frames[-1].rsplit("(", 1)[-1].rstrip(")").split("/")[0] or "?"
        modules[module] += count
    if not total:
        return "py-spy recorded no samples"
    lines = [f"{total} samples on the CPU"]
    lines.append("  own time, by package or module of the top frame:")
    lines += [f"    {n * 100 / total:5.1f}%  {name}" for name, n in modules.most_common(top)]
    lines.append("  own time, by function:")
    lines += [f"    {n * 100 / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("  inclusive time, by function:")
    lines += [f"    {n * 100 / total:5.1f}%  {name}" for name, n in inclusive.most_common(top * 2)]
    return "\n".join(lines)


@contextlib.contextmanager
def recording(pid: int, workdir: Path, name: str, keep: Path | None = None) -> Iterator[None]:
    """Sample ``pid`` for the duration of the block, then print the summary."""
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        print("py-spy is not installed (pip install py-spy): no profile")
        yield
        return
    out = (keep or Path.cwd()) / f"profile-{name}.txt"
    process = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--format", "raw", "--gil", *_RATE, str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    if out.exists():
        print(f"profile of serve ({out}):\n{summarise(out)}")
    else:
        print(f"py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")
