"""Quickstart: the seed's five stages, one line each, around an embedded Motion Server.

    python examples/quickstart.py [speech.wav] [--headless]

Opens a window; with no display it says so (``noDisplay``) and exits 2: pass
``--headless`` to run it off-screen. In production the Motion Server runs elsewhere and your
backend hands the client its session token; here ``EmbeddedServer`` plays both parts on
loopback.
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
        # assets_url: the bundled avatars, no download (without it: the server's /v1/avatars)
        AvatarSDK.initialize(
            server.app_id,
            Configuration(ingress_url=server.ingress_url, assets_url=str(AVATARS_DIR)),
        )  # 1 initialize
        avatar = AvatarManager.shared().load_blocking("ava")  # 2 load the avatar
        view = app.scene.create_entity("host").add_component(
            AvatarView(avatar)
        )  # 3 render (idle plays)
        view.frame(app.scene.camera)  # a head shot from the avatar's framing hints
        AvatarSDK.set_session_token(server.issue_token())  # 4 authenticate (your backend's token)
        view.controller.start()  # 5 connect ...
        view.controller.send(pcm, end=True)  # ... and speak
        frames = app.run(seconds=len(pcm) / 32000 + 1.0)
        view.dispose()  # cleanup
    print(
        f"quickstart: {view.avatar.id} spoke {len(pcm) / 32000:.1f} s of speech, "
        f"{frames} frames rendered"
    )
    return view


if __name__ == "__main__":
    from avatarkit import AvatarKitError
    from engine import EngineError

    args = [a for a in sys.argv[1:] if a != "--headless"]
    try:
        main(*args[:1], headless="--headless" in sys.argv)
    except (AvatarKitError, EngineError) as exc:  # one line with its stable code, no traceback
        print(f"quickstart: error [{exc.code}]: {exc.message}", file=sys.stderr)
        sys.exit(2)
    except (OSError, wave.Error) as exc:  # the speech file given on the command line
        print(f"quickstart: error [invalidAudio]: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(0)
