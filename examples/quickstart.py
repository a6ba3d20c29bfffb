"""Quickstart: the seed's five stages, one line each, around an embedded Motion Server.

    python examples/quickstart.py [speech.wav] [--headless]

In production the Motion Server runs elsewhere and your backend hands the client its
session token; here ``EmbeddedServer`` plays both parts on loopback.
"""

from __future__ import annotations

import sys
import wave

from avatarkit import AvatarManager, AvatarSDK, AvatarView, Configuration
from avatarkit.paths import AVATARS_DIR, SPEECH_DIR
from avatarkit.server.embedded import EmbeddedServer
from engine import App, RealtimeClock


def main(wav: str = str(SPEECH_DIR / "greeting.wav"), headless: bool = False) -> AvatarView:
    pcm = wave.open(wav).readframes(-1)  # 16 kHz mono PCM s16le
    app = (
        App.headless(clock=RealtimeClock(30))
        if headless
        else App.window(title="AvatarKit quickstart")
    )
    with EmbeddedServer() as server, app:
        AvatarSDK.initialize(
            server.app_id, Configuration(ingress_url=server.ingress_url)
        )  # 1 initialize
        avatar = AvatarManager(str(AVATARS_DIR)).load_blocking("ava")  # 2 load the avatar
        view = app.scene.create_entity("host").add_component(
            AvatarView(avatar)
        )  # 3 render (idle plays)
        view.frame(app.scene.camera)  # a head shot from the avatar's framing hints
        AvatarSDK.set_session_token(server.issue_token())  # 4 authenticate (your backend's token)
        view.controller.start()  # 5 connect ...
        view.controller.send(pcm, end=True)  # ... and speak
        app.run(seconds=len(pcm) / 32000 + 1.0)
        view.dispose()  # cleanup
    return view


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--headless"]
    main(*args[:1], headless="--headless" in sys.argv)
