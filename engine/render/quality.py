"""Named render qualities: how many MSAA samples, and whether the post anti-aliasing pass
runs. One name picks both, so an app (or the SDK) asks for "low" / "medium" /
"geometric" / "high" and the engine decides what each costs on this rasteriser.

A software rasteriser (llvmpipe) pays for every MSAA sample in full: 4x costs it about
2-3x the frame time, while the post pass (``engine.render.post_aa``) costs one cheap
full-screen pass, and the edge lines (``engine.render.edge_lines``) little more. A GPU
resolves MSAA almost for free. So ``auto`` is ``high`` on a GPU and, on a software
rasteriser, ``geometric`` offline and ``medium`` in a live window to start (which then
adapts: ``engine.render.adaptive``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine import errors
from engine.errors import EngineError


@dataclass(frozen=True)
class Quality:
    name: str
    samples: int  # MSAA samples per pixel (0 = off)
    post_aa: bool  # the FXAA-style edge pass after the resolve
    # Silhouettes and open mesh borders blended by their exact place after the post pass
    # (engine.render.edge_lines; the draws are captured while a target draws them).
    edge_lines: bool = False

    def with_samples(self, samples: int) -> Quality:
        """This quality with another MSAA sample count (``--samples``)."""
        if samples < 0 or samples > 16:
            raise EngineError(errors.INVALID_ARGUMENT, f"samples must be 0-16, got {samples}")
        return replace(self, samples=int(samples))


QUALITIES: dict[str, Quality] = {
    "low": Quality("low", samples=0, post_aa=False),  # aliased edges; the fastest
    "medium": Quality("medium", samples=0, post_aa=True),  # live windows on llvmpipe
    # FXAA, then the edges that show drawn over it as exact-coverage lines
    # (engine.render.edge_lines): as clean as 4x MSAA at about medium's cost (a few
    # percent more at 720p, about 10% at 640x360 on llvmpipe). Offline on llvmpipe.
    "geometric": Quality("geometric", samples=0, post_aa=True, edge_lines=True),
    # Today's 4x MSAA. The post pass on top of it measured slightly worse against a 16x
    # supersampled reference (it softens edges MSAA already got right), so it is off.
    "high": Quality("high", samples=4, post_aa=False),  # the GPU default
}
QUALITY_NAMES = ("auto", *QUALITIES)


def resolve_quality(quality: str | Quality, software: bool, live: bool = False) -> Quality:
    """A ``Quality`` for a name or the one given. ``auto`` picks by rasteriser and use:
    ``high`` on a GPU; on a software rasteriser ``geometric`` offline, ``medium`` where
    frames are shown ``live`` (a window's frame rate first: each avatar's edge capture
    and its lines cost the frame about 2 ms on llvmpipe)."""
    if isinstance(quality, Quality):
        return quality
    if quality == "auto":
        return QUALITIES[("medium" if live else "geometric") if software else "high"]
    try:
        return QUALITIES[quality]
    except KeyError:
        raise EngineError(
            errors.INVALID_ARGUMENT,
            f"unknown render quality {quality!r}; one of {', '.join(QUALITY_NAMES)}",
        ) from None
