"""``avatarkit avatars``: list bundled and served ids, download with progress, inspect a model."""

from __future__ import annotations

import asyncio
import threading

import pytest

from avatarkit.cli import main
from avatarkit.package import list_packages
from avatarkit.paths import AVATARS_DIR
from avatarkit.server.assets import AssetServer

pytestmark = pytest.mark.timeout(60)


def test_lists_bundled_ids_one_per_line(capsys):
    assert main(["avatars"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 3
    assert lines == [m.id for m in list_packages(AVATARS_DIR)]  # as the README says: ids
    assert main(["avatars", "--long"]) == 0
    assert [line.split("\t") for line in capsys.readouterr().out.splitlines()] == [
        [m.id, m.name] for m in list_packages(AVATARS_DIR)
    ]


class ServerThread:
    """The asset service on its own thread and loop, for a blocking CLI call."""

    def __init__(self, root=None) -> None:
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.server = AssetServer(root)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.server.stop())

    def __enter__(self) -> AssetServer:
        self.thread.start()
        assert self.ready.wait(10)
        return self.server

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_url_listing_and_load_with_progress(capsys, tmp_path):
    with ServerThread() as server:
        assert main(["avatars", "--url", server.url]) == 0
        served = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
        assert served == [m.id for m in list_packages(AVATARS_DIR)]

        assert (
            main(["avatars", "--url", server.url, "--cache-dir", str(tmp_path), "--load", "mei"])
            == 0
        )
        out, err = capsys.readouterr()
        assert out.strip() == str(tmp_path / "mei")
        assert err.splitlines() == ["mei: completed (100%)"]  # not a terminal: one final line

        assert (
            main(["avatars", "--url", server.url, "--cache-dir", str(tmp_path), "--load", "nobody"])
            == 2
        )
        err = capsys.readouterr().err
        assert "avatarNotFound" in err and "`avatarkit avatars --url" in err  # where the ids are
    assert main(["avatars", "--cache-dir", str(tmp_path), "--clear-cache"]) == 0
    assert not (tmp_path / "mei").exists()


def test_info_reports_channels(capsys):
    assert main(["avatars", "--info", "ava"]) == 0
    out = capsys.readouterr().out
    assert "52/52 ARKit channels driven" in out and "jawOpen: Face:jawOpen" in out
