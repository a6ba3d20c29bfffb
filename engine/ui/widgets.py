"""Overlay widgets: plain data plus a ``draw(surface, fonts)`` that paints into a pygame
surface. Anchors place a widget against a screen edge or corner, ``offset`` in pixels
inwards from it (``"top-left"``, ``"top"``, ``"top-right"``, ``"left"``, ``"center"``,
``"right"``, ``"bottom-left"``, ``"bottom"``, ``"bottom-right"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.quiet_pygame import import_pygame

import_pygame()
import pygame  # noqa: E402  (loaded quietly above)

Color = tuple[int, int, int, int]
FontFor = Callable[[int], "pygame.font.Font"]

WHITE: Color = (255, 255, 255, 255)
DIM: Color = (255, 255, 255, 150)
SHADE: Color = (10, 14, 22, 170)
ACCENT: Color = (90, 200, 255, 255)


def place(
    anchor: str, offset: tuple[int, int], box: tuple[int, int], screen: tuple[int, int]
) -> tuple[int, int]:
    """Top-left corner of a ``box``-sized rectangle anchored on the screen."""
    (ox, oy), (w, h), (sw, sh) = offset, box, screen
    vertical, _, horizontal = anchor.partition("-") if "-" in anchor else (anchor, "", anchor)
    if horizontal == "left":
        x = ox
    elif horizontal == "right":
        x = sw - w - ox
    else:
        x = (sw - w) // 2 + ox
    if vertical == "top":
        y = oy
    elif vertical == "bottom":
        y = sh - h - oy
    else:
        y = (sh - h) // 2 + oy
    return x, y


@dataclass(kw_only=True)
class Widget:
    """Base: placement and visibility. ``rect`` is set by ``draw``: (x, y, w, h) in pixels."""

    anchor: str = "top-left"
    offset: tuple[int, int] = (16, 16)
    visible: bool = True
    rect: tuple[int, int, int, int] | None = field(
        default=None, compare=False, repr=False
    )  # last drawn

    def draw(self, surface: pygame.Surface, font_for: FontFor) -> None:
        raise NotImplementedError

    def contains(self, pos: tuple[int, int]) -> bool:
        """Whether a screen point (pixels, top-left origin) falls on the widget as last drawn."""
        if self.rect is None or not self.visible:
            return False
        x, y, w, h = self.rect
        return x <= pos[0] < x + w and y <= pos[1] < y + h


@dataclass
class Text(Widget):
    """Word-wrapped text on an optional rounded panel.

    ``max_width``: wrap width in pixels, or a fraction (<= 1) of the screen width.
    ``highlight``: words before this index use ``color``, the rest ``dim_color`` (spoken
    vs upcoming words of a caption); None draws every word in ``color``.
    ``rect``: where it was last drawn, (x, y, w, h) in pixels (hit tests).
    """

    text: str = ""
    size: int = 26
    color: Color = WHITE
    dim_color: Color = DIM
    background: Color | None = SHADE
    padding: int = 10
    max_width: float = 0.8
    align: str = "left"  # or "center", "right"
    highlight: int | None = None
    line_spacing: float = 1.15
    min_width: int = 0  # panel width at least this (pixels), e.g. for a column of buttons

    def draw(self, surface: pygame.Surface, font_for: FontFor) -> None:
        if not self.text:
            return
        font = font_for(self.size)
        limit = self.max_width * surface.get_width() if self.max_width <= 1 else self.max_width
        lines = self._layout(font, int(limit) - 2 * self.padding)
        line_h = round(font.get_linesize() * self.line_spacing)
        text_w = max(max(width for width, _ in lines), self.min_width - 2 * self.padding)
        box = (
            text_w + 2 * self.padding,
            line_h * len(lines) + 2 * self.padding - (line_h - font.get_linesize()),
        )
        x, y = place(self.anchor, self.offset, box, surface.get_size())
        self.rect = (x, y, *box)
        if self.background is not None:
            panel = pygame.Rect(x, y, *box)
            pygame.draw.rect(surface, self.background, panel, border_radius=min(12, box[1] // 3))
        space = font.size(" ")[0]
        for row, (width, words) in enumerate(lines):
            slack = text_w - width
            cx = x + self.padding + {"center": slack // 2, "right": slack}.get(self.align, 0)
            cy = y + self.padding + row * line_h
            for index, word in words:
                spoken = self.highlight is None or index < self.highlight
                color = self.color if spoken else self.dim_color
                image = font.render(word, True, color[:3])
                if color[3] < 255:
                    image.set_alpha(color[3])
                surface.blit(image, (cx, cy))
                cx += image.get_width() + space

    def _layout(
        self, font: pygame.font.Font, width: int
    ) -> list[tuple[int, list[tuple[int, str]]]]:
        """Greedy word wrap: ``[(line width, [(word index, word)...])...]``; newlines kept."""
        space = font.size(" ")[0]
        lines: list[tuple[int, list[tuple[int, str]]]] = []
        index = 0
        for paragraph in self.text.split("\n"):
            line: list[tuple[int, str]] = []
            line_w = 0
            for word in paragraph.split():
                w = font.size(word)[0]
                if line and line_w + space + w > width:
                    lines.append((line_w, line))
                    line, line_w = [], 0
                line_w += (space if line else 0) + w
                line.append((index, word))
                index += 1
            lines.append((line_w, line))
        return lines


@dataclass
class ProgressBar(Widget):
    """A labelled bar, ``progress`` 0..1."""

    progress: float = 0.0
    label: str = ""
    width: int = 420
    height: int = 14
    size: int = 24
    color: Color = ACCENT
    track: Color = (255, 255, 255, 50)
    text_color: Color = WHITE
    anchor: str = "center"
    offset: tuple[int, int] = (0, 0)

    def draw(self, surface: pygame.Surface, font_for: FontFor) -> None:
        font = font_for(self.size)
        label_h = font.get_linesize() + 6 if self.label else 0
        x, y = place(
            self.anchor, self.offset, (self.width, self.height + label_h), surface.get_size()
        )
        self.rect = (x, y, self.width, self.height + label_h)
        if self.label:
            image = font.render(self.label, True, self.text_color[:3])
            surface.blit(image, (x + (self.width - image.get_width()) // 2, y))
        radius = self.height // 2
        bar = pygame.Rect(x, y + label_h, self.width, self.height)
        pygame.draw.rect(surface, self.track, bar, border_radius=radius)
        filled = round(self.width * min(1.0, max(0.0, self.progress)))
        if filled:
            pygame.draw.rect(
                surface,
                self.color,
                pygame.Rect(x, y + label_h, filled, self.height),
                border_radius=radius,
            )
