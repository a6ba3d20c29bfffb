"""A VRM file's own terms of use, as its author wrote them in the ``meta`` of ``VRMC_vrm``
(1.0) or ``VRM`` (0.x): who made it, the licence, and what it permits (an avatar for
everyone or only its author, commercial use, modification, redistribution, credit). A
kiosk or a game that shows someone's avatar must keep to them: ``avatarkit inspect``
prints them, and this module only reads them (untrusted JSON: strings are cut to
``MAX_TEXT`` printable characters, anything else is left out)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine import GltfAsset

MAX_TEXT = 120
# (label, VRM 1.0 key, VRM 0.x key): in the order a reader wants them.
FIELDS = (
    ("name", "name", "title"),
    ("version", "version", "version"),
    ("authors", "authors", "author"),
    ("licence", "licenseUrl", "licenseName"),
    ("other licence", "otherLicenseUrl", "otherLicenseUrl"),
    ("avatar use", "avatarPermission", "allowedUserName"),
    ("commercial use", "commercialUsage", "commercialUssageName"),  # sic: UniVRM 0.x
    ("violent use", "allowExcessivelyViolentUsage", "violentUssageName"),
    ("sexual use", "allowExcessivelySexualUsage", "sexualUssageName"),
    ("political or religious use", "allowPoliticalOrReligiousUsage", None),
    ("antisocial or hate use", "allowAntisocialOrHateUsage", None),
    ("credit", "creditNotation", None),
    ("redistribution", "allowRedistribution", None),
    ("modification", "modification", None),
    ("other permission", None, "otherPermissionUrl"),
)


def vrm_terms(asset: GltfAsset) -> dict[str, str]:
    """Label -> value of the file's VRM meta (empty without one)."""
    vrm1, vrm0 = asset.extensions.get("VRMC_vrm"), asset.extensions.get("VRM")
    meta = vrm1.get("meta") if isinstance(vrm1, dict) else None
    column = 1
    if not isinstance(meta, dict):
        meta = vrm0.get("meta") if isinstance(vrm0, dict) else None
        column = 2
    if not isinstance(meta, dict):
        return {}
    out = {}
    for row in FIELDS:
        key = row[column]
        text = _text(meta.get(key)) if key is not None else None
        if text:
            out[row[0]] = text
    return out


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "allowed" if value else "not allowed"
    if isinstance(value, list):
        parts = [t for t in (_text(v) for v in value[:8]) if t]
        return ", ".join(parts)[:MAX_TEXT] if parts else None
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        return None
    text = "".join(c if c.isprintable() else " " for c in value).strip()
    return text[:MAX_TEXT] or None
