"""A VRM file's terms of use (its ``meta``: licence, who may use the avatar, commercial
use, ...) printed by ``avatarkit inspect``, for VRM 1.0 and 0.x; the meta is untrusted:
what is not text is left out, and text is cut and made printable."""

from __future__ import annotations

import json

from test_conventions import vrm0, vrm1, write_head

from assets.test.make_vrm_heads import HERE
from avatarkit.inspection import inspect_avatar
from avatarkit.vrm_meta import MAX_TEXT


def test_both_versions_terms_are_printed():
    one = inspect_avatar(HERE / "vrm1_head.vrm")
    assert one.terms["licence"] == "https://vrm.dev/licenses/1.0/"
    assert one.terms["avatar use"] == "everyone" and one.terms["commercial use"] == "corporation"
    assert one.terms["violent use"] == "not allowed" and one.terms["credit"] == "unnecessary"
    lines = one.lines()
    assert "VRM terms of use (from the file's meta):" in lines
    assert "  modification: allowModificationRedistribution" in lines
    assert json.loads(json.dumps(one.to_json()))["terms"]["licence"].startswith("https://")
    zero = inspect_avatar(HERE / "vrm0_head.vrm")
    assert zero.terms["licence"] == "CC0" and zero.terms["avatar use"] == "Everyone"
    assert zero.terms["commercial use"] == "Allow"  # UniVRM's commercialUssageName


def test_a_plain_glb_has_none(tmp_path):
    assert inspect_avatar(write_head(tmp_path / "plain.glb", {"jawOpen": "mouth"})).terms == {}


def test_hostile_meta_is_cut_and_made_printable(tmp_path):
    ext = vrm1({"aa": [(0, 1.0)]})
    ext["VRMC_vrm"]["meta"] = {
        "name": "x" * 5000,
        "authors": ["ok", 3, None, {"a": 1}, "two\nlines\x1b[31m"],
        "licenseUrl": {"not": "text"},
        "commercialUsage": ["a"] * 100,
        "allowRedistribution": True,
    }
    terms = inspect_avatar(write_head(tmp_path / "h.vrm", {"m0": "mouth"}, ext)).terms
    assert len(terms["name"]) == MAX_TEXT and "licence" not in terms
    assert terms["authors"].isprintable() and terms["authors"].startswith("ok, 3, two")
    assert terms["redistribution"] == "allowed" and len(terms["commercial use"]) <= MAX_TEXT
    old = vrm0([("A", "a", [(0, 100)])])
    old["VRM"]["meta"] = {"title": "zero", "licenseName": "Redistribution_Prohibited"}
    terms = inspect_avatar(write_head(tmp_path / "z.vrm", {"m0": "mouth"}, old)).terms
    assert terms == {"name": "zero", "licence": "Redistribution_Prohibited"}
