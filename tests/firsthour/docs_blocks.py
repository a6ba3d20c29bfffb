"""Run the Python code blocks of README.md and docs/*.md, so the docs cannot drift from the API.

    python tests/firsthour/docs_blocks.py [FILE.md ...]     # run them all, report each

Fences:

- ```` ```python ````: runs, each block in a fresh interpreter, in a scratch folder.
- ```` ```python norun ````: shown only; it must still parse. For what cannot run here (a
  production deployment, a sketch with ``...``). Say in the prose what it needs.
- any other language (``bash``, ``text``, ...): never executed here; the commands are
  exercised by ``tests/firsthour/test_walkthrough.py``.

What a block may use without defining it (what an app brings, given real values here):

- ``app_id``/``APP_ID``, ``api_key``/``API_KEY``, ``server_ws_url``, ``console_url``,
  ``token_from_your_backend``: those of a stand-in Motion Server (``EmbeddedServer``);
- ``127.0.0.1:8765`` (where ``avatarkit serve`` listens by default) is rewritten to that
  server's address, so a block may name it literally;
- ``pcm``, ``pcm_s16le_16k``, ``pcm_chunk``: bundled speech, 16 kHz mono PCM s16le bytes;
- ``scene``: the scene of a small headless ``App``;
- ``on_frames``: a ``transport_frames`` callback (collects envelopes);
- ``envelope_bytes``/``data``: one animation envelope as ``transport_frames`` gets it;
- files ``model.glb``, ``my_avatar.glb``, ``path/to/file.glb``, ``speech.wav``: copies of
  a bundled avatar and speech in the scratch folder.

Top-level ``await``/``async with`` work (the block then runs as a coroutine). A window
(``App.window``) opens on a virtual display (Xvfb) when one is available, else the
block gets ``App.headless`` of the same size: no block ever needs a real screen.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).with_name("docs_harness.py")
FENCE = re.compile(r"^```(\S*)[ \t]*(.*)$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    options: tuple[str, ...]
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang == "python" and "norun" not in self.options


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def extract(path: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match and match.group(1):
            start, body = i, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append(
                Block(
                    path,
                    start + 1,
                    match.group(1).lower(),
                    tuple(match.group(2).split()),
                    "\n".join(body) + "\n",
                )
            )
        i += 1
    return blocks


def python_blocks() -> list[Block]:
    return [b for path in doc_files() for b in extract(path) if b.lang == "python"]


@contextmanager
def virtual_display() -> Iterator[str | None]:
    """An Xvfb display for the blocks' windows (None where Xvfb is not installed)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        yield None
        return
    read, write = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()  # Xvfb writes its display number once ready
        yield f":{number}" if number else None
    finally:
        proc.terminate()
        proc.wait(10)


def run_block(
    block: Block, scratch: Path, display: str | None, timeout: float = 120
) -> subprocess.CompletedProcess:
    scratch.mkdir(parents=True, exist_ok=True)
    source = scratch / "block.py"
    source.write_text(block.code, encoding="utf-8")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")
    }
    env.update(
        AVATARKIT_CACHE_DIR=str(scratch / "cache"), SDL_AUDIODRIVER="dummy", PYTHONPATH=str(REPO)
    )
    env.pop("AVATARKIT_ASSET_URL", None)
    if display:
        env.update(DISPLAY=display, SDL_VIDEODRIVER="x11")
    return subprocess.run(
        [sys.executable, str(HARNESS), str(source), block.id],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def main(argv: list[str]) -> int:
    import tempfile

    files = [Path(a).resolve() for a in argv] or doc_files()
    failed = 0
    with virtual_display() as display, tempfile.TemporaryDirectory() as tmp:
        for n, block in enumerate(b for f in files for b in extract(f) if b.runs):
            started = time.monotonic()
            result = run_block(block, Path(tmp) / str(n), display)
            ok = result.returncode == 0
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {block.id} ({time.monotonic() - started:.1f} s)")
            if not ok:
                print(result.stdout + result.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
