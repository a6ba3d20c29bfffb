"""``avatarkit inspect PATH``: what a glTF / GLB / VRM file offers as an avatar."""

from __future__ import annotations

import argparse

DESCRIPTION = """Describe an avatar file: its meshes and morph targets with the convention each
follows (ARKit-52, Oculus/Ready Player Me visemes, VRM expressions), which ARKit channels
the motion can drive, skins, the extensions it requires or uses and what becomes of each,
its size and unit, and where a view would frame its face (eyes, the morph-moved region,
the head bone, or the whole model). A file the engine cannot load is still described,
with the reason; the exit status is then 1. --sheet renders six poses into one PNG
(headless EGL)."""

EXAMPLES = """examples:
  avatarkit inspect head.glb
  avatarkit inspect character.vrm --all         # every target and every channel's targets
  avatarkit inspect facecap.glb --json
  avatarkit inspect head.glb --sheet head.png   # six poses rendered side by side"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="what a glTF/GLB/VRM file offers as an avatar",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", help="a .glb, .gltf or .vrm file")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--all", action="store_true", help="list every target and every channel")
    p.add_argument(
        "--sheet",
        metavar="PNG",
        help="also write a contact sheet: neutral, jaw open, blink, smile, funnel, head turned",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from avatarkit.inspection import inspect_avatar

    report = inspect_avatar(args.path)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print("\n".join(report.lines(verbose=args.all)))
    if args.sheet and report.loadable:
        from avatarkit.avatar import Avatar
        from avatarkit.contact_sheet import write_contact_sheet

        sheet = write_contact_sheet(Avatar.from_file(args.path), args.sheet)
        if not args.json:
            print(f"contact sheet: {sheet}")
    return 0 if report.loadable else 1
