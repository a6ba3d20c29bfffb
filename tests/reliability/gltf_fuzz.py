"""Seeded glTF fuzzer: mutants of the bundled GLBs through ``engine.load_gltf``.

Every mutant must either load (and then its hierarchy walks and bounds compute) or fail
with an ``EngineError`` carrying one of the loader's codes, within 1 s of CPU; the whole run must
stay under 256 MB above its baseline. Anything else (another exception, a slow load, a
hang, memory growth) is a finding, printed with the mutant's id so it can be replayed.

Mutations: byte flips (biased to the header and JSON chunk, where the structure is),
chunk and header length lies, truncation and trailing bytes, JSON field mutations (a
random value anywhere in the document replaced by a hostile one, deleted, or a list
entry duplicated), and structural ones (cycles, huge counts, out-of-range indices,
hostile uris, stride/offset lies, short TRS arrays, deep nesting).

    python tests/reliability/gltf_fuzz.py --seed 1 --mutants 2000     # per bundled GLB
    python tests/reliability/gltf_fuzz.py --seed 1 --only kai:417     # replay one mutant

Exit status 0 when there are no findings; the last line of output is a JSON summary.
"""

from __future__ import annotations

import argparse
import copy
import faulthandler
import json
import logging
import os
import pathlib
import random
import re
import resource
import shutil
import struct
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import EngineError, load_gltf  # noqa: E402
from engine import errors as codes  # noqa: E402
from engine.gltf_write import pack_glb, unpack_glb  # noqa: E402

CODED = {
    codes.INVALID_GLTF,
    codes.GLTF_LIMIT_EXCEEDED,
    codes.GLTF_URI_NOT_ALLOWED,
    codes.ASSET_NOT_FOUND,
    codes.UNSUPPORTED_GLTF_EXTENSION,
}
MAX_SECONDS = 1.0
MAX_GROWTH_MB = 256
HANG_SECONDS = 10  # a load this long is a hang: dump every stack and exit non-zero

HOSTILE_VALUES: list[Any] = [
    -1,
    0,
    1,
    2,
    3,
    7,
    255,
    65535,
    2**24,
    2**26,
    2**31 - 1,
    2**31,
    2**32 + 1,
    2**53,
    2**63,
    10**30,
    0.5,
    -0.0,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    True,
    False,
    None,
    "",
    "x",
    "VEC3",
    "SCALAR",
    "MAT4",
    "../x",
    [],
    [0],
    [0, 0, 0],
    [0] * 17,
    {},
    {"uri": "/etc/passwd"},
]
HOSTILE_URIS = [
    "../../../../etc/passwd",
    "/proc/self/environ",
    "/etc/passwd",
    "file:///etc/passwd",
    "http://127.0.0.1:9/x",
    "..%2f..%2fetc%2fpasswd",
    "a/../../b",
    "C:\\x",
    "\\\\server\\share",
    "data:,abc",
    "data:;base64,@@@",
    "missing.bin",
    ".",
    "",
    "%00",
    "/dev/zero",
    "/dev/stdin",
]


# -- byte-level mutations ------------------------------------------------------------------
def flip_bytes(rng: random.Random, data: bytes, structure_end: int) -> tuple[bytes, str]:
    out = bytearray(data)
    n = rng.choice([1, 1, 2, 4, 8, 32])
    for _ in range(n):
        # Half the flips land in the header + JSON chunk: the rest is mostly vertex data.
        at = rng.randrange(structure_end) if rng.random() < 0.5 else rng.randrange(len(out))
        out[at] ^= rng.randrange(1, 256)
    return bytes(out), f"flip {n} bytes"


def lie_about_lengths(rng: random.Random, data: bytes, json_length: int) -> tuple[bytes, str]:
    out = bytearray(data)
    field = rng.choice(["header", "json", "bin"])
    offset = {"header": 8, "json": 12, "bin": 20 + json_length}[field]
    true = struct.unpack_from("<I", out, offset)[0]
    value = rng.choice(
        [
            0,
            1,
            4,
            8,
            true - 4,
            true - 1,
            true + 1,
            true + 4,
            true * 2,
            len(data),
            2**31,
            2**32 - 1,
            rng.randrange(2**32),
        ]
    )
    struct.pack_into("<I", out, offset, value % 2**32)
    return bytes(out), f"{field} length {true} -> {value % 2**32}"


def cut_or_extend(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    if rng.random() < 0.6:
        at = rng.choice([0, 3, 4, 11, 12, 19, 20, rng.randrange(len(data))])
        return data[:at], f"truncated at {at}"
    extra = bytes(rng.randrange(256) for _ in range(rng.choice([1, 3, 8, 64])))
    return data + extra, f"{len(extra)} trailing bytes"


# -- document mutations --------------------------------------------------------------------
def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every location in the document (containers and leaves)."""
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += paths(value, (*prefix, key))
    elif isinstance(doc, list) and len(doc) <= 256:  # long numeric arrays: a sample is enough
        for i, value in enumerate(doc):
            found += paths(value, (*prefix, i))
    return found


def _parent(doc: Any, path: tuple) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def mutate_field(rng: random.Random, doc: dict, locations: list[tuple]) -> str:
    for _ in range(20):  # an earlier mutation of this mutant may have removed the path
        path = rng.choice(locations)
        try:
            parent, key = _parent(doc, path), path[-1]
            parent[key]  # noqa: B018
            if isinstance(parent, dict | list):
                break
        except (KeyError, IndexError, TypeError):
            continue
    else:
        return "no-op"
    action = rng.random()
    if action < 0.7:
        value = copy.deepcopy(rng.choice(HOSTILE_VALUES))
        parent[key] = value
        return f"{_name(path)} = {json.dumps(value)[:40]}"
    if action < 0.85 and isinstance(parent, dict):
        del parent[key]
        return f"del {_name(path)}"
    if isinstance(parent, list):
        parent.insert(key, copy.deepcopy(parent[key]))
        return f"dup {_name(path)}"
    parent[key] = copy.deepcopy(doc.get(rng.choice(list(doc))))  # a foreign subtree
    return f"{_name(path)} = <another subtree>"


def structural(rng: random.Random, doc: dict) -> str:
    """A targeted attack on what the loader follows."""
    nodes, accessors, views = (
        doc.get("nodes", []),
        doc.get("accessors", []),
        doc.get("bufferViews", []),
    )
    kind = rng.choice(
        [
            "cycle",
            "self",
            "two-parents",
            "huge-count",
            "huge-count-in-view",
            "bad-index",
            "uri",
            "image-uri",
            "stride",
            "offset",
            "trs",
            "root-child",
            "deep",
            "sparse",
            "many-nodes",
            "instancing",
        ]
    )
    if kind == "cycle" and len(nodes) > 1:
        child = rng.randrange(1, len(nodes))
        nodes[child].setdefault("children", []).append(0)
    elif kind == "self" and nodes:
        i = rng.randrange(len(nodes))
        nodes[i].setdefault("children", []).append(i)
    elif kind == "two-parents" and len(nodes) > 2:
        nodes[-1].setdefault("children", []).append(rng.randrange(1, len(nodes) - 1))
    elif kind == "huge-count" and accessors:
        acc = rng.choice(accessors)
        acc.pop("bufferView", None)
        acc["count"] = rng.choice([2**24, 2**26, 2**31, 2**40])
    elif kind == "huge-count-in-view" and accessors:
        rng.choice(accessors)["count"] = rng.choice([2**20, 2**24, 2**26])
    elif kind == "bad-index":
        field = rng.choice(
            [
                "scene",
                "node-mesh",
                "child",
                "attribute",
                "indices",
                "view",
                "buffer",
                "material",
                "texture",
            ]
        )
        bad = rng.choice([-1, 10**6, 2**31, len(nodes), len(accessors), len(views)])
        if field == "scene":
            doc["scene"] = bad
        elif field == "node-mesh" and nodes:
            rng.choice(nodes)["mesh"] = bad
        elif field == "child" and nodes:
            rng.choice(nodes)["children"] = [bad]
        elif field in ("attribute", "indices", "material") and doc.get("meshes"):
            prim = rng.choice(rng.choice(doc["meshes"])["primitives"])
            if field == "attribute":
                prim["attributes"][rng.choice(list(prim["attributes"]))] = bad
            else:
                prim[field] = bad
        elif field == "view" and accessors:
            rng.choice(accessors)["bufferView"] = bad
        elif field == "buffer" and views:
            rng.choice(views)["buffer"] = bad
        elif field == "texture" and doc.get("textures"):
            rng.choice(doc["textures"])["source"] = bad
        kind = f"bad-index {field}={bad}"
    elif kind == "uri":
        doc["buffers"][0]["uri"] = rng.choice(HOSTILE_URIS)
    elif kind == "image-uri" and doc.get("images"):
        image = rng.choice(doc["images"])
        image.pop("bufferView", None)
        image["uri"] = rng.choice(HOSTILE_URIS)
    elif kind == "stride" and views:
        rng.choice(views)["byteStride"] = rng.choice([0, 1, 3, 4, 252, 256, 2**31])
    elif kind == "offset":
        target = rng.choice(accessors or [{}] if rng.random() < 0.5 else views or [{}])
        target["byteOffset"] = rng.choice([1, 2, 3, 2**20, 2**31, 2**40])
    elif kind == "trs" and nodes:
        node = rng.choice(nodes)
        key, good = rng.choice([("translation", 3), ("rotation", 4), ("scale", 3), ("matrix", 16)])
        node[key] = [0.0] * rng.choice([0, 1, good - 1, good + 1])
    elif kind == "root-child" and len(nodes) > 1 and doc.get("scenes"):
        doc["scenes"][0]["nodes"].append(rng.randrange(1, len(nodes)))
    elif kind == "deep":
        depth = rng.choice([65, 1000, 100_000])
        doc["extras"] = f"@@DEEP{depth}@@"  # spliced in as text: json.dumps itself recurses
        kind = f"deep {depth}"
    elif kind == "sparse" and accessors:
        acc = rng.choice(accessors)
        acc["sparse"] = {
            "count": rng.choice([1, acc.get("count", 1), 2**30]),
            "indices": {
                "bufferView": rng.randrange(max(len(views), 1)),
                "componentType": rng.choice([5121, 5123, 5125, 5126]),
            },
            "values": {
                "bufferView": rng.randrange(max(len(views), 1)),
                "byteOffset": rng.choice([0, 4, 2**31]),
            },
        }
    elif kind == "many-nodes":
        doc["nodes"] = nodes + [{} for _ in range(rng.choice([100, 20_000]))]
    elif kind == "instancing" and doc.get("meshes"):
        mesh = max(range(len(doc["meshes"])), key=lambda m: len(doc["meshes"][m]["primitives"]))
        extra = [{"mesh": mesh} for _ in range(rng.choice([10, 1_000, 9_000]))]
        doc["scenes"][0]["nodes"] += range(len(nodes), len(nodes) + len(extra))
        doc["nodes"] = nodes + extra
    return kind


def _name(path: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def pack(doc: dict, blob: bytes | None) -> bytes:
    data = pack_glb(doc, blob)
    deep = re.search(rb'"@@DEEP(\d+)@@"', data)
    if deep:
        depth = int(deep.group(1))
        doc_json = json.dumps(doc, separators=(",", ":")).replace(
            deep.group(0).decode(), "[" * depth + "0" + "]" * depth
        )
        raw = doc_json.encode() + b" " * (-len(doc_json) % 4)
        rest = data[20 + struct.unpack_from("<I", data, 12)[0] :]
        body = struct.pack("<II", len(raw), 0x4E4F534A) + raw + rest
        data = b"glTF" + struct.pack("<II", 2, 12 + len(body)) + body
    return data


# -- the run -------------------------------------------------------------------------------
class Source:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.stem
        self.data = path.read_bytes()
        self.doc, self.blob = unpack_glb(self.data)
        self.text = json.dumps(self.doc)  # json.loads of this is ~10x faster than deepcopy
        self.json_length = struct.unpack_from("<I", self.data, 12)[0]
        self.locations = paths(self.doc)


def make_mutant(source: Source, rng: random.Random) -> tuple[bytes, str]:
    roll = rng.random()
    if roll < 0.25:
        return flip_bytes(rng, source.data, 20 + source.json_length)
    if roll < 0.35:
        return lie_about_lengths(rng, source.data, source.json_length)
    if roll < 0.42:
        return cut_or_extend(rng, source.data)
    doc = json.loads(source.text)
    if roll < 0.75:
        what = "; ".join(
            mutate_field(rng, doc, source.locations) for _ in range(rng.choice([1, 1, 2, 3]))
        )
    else:
        what = structural(rng, doc)
    return pack(doc, source.blob), what


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def exercise(path: Path) -> str:
    """Load, then do what a renderer does first (walk the hierarchy, measure bounds)."""
    try:
        asset = load_gltf(path)
    except EngineError as exc:
        return exc.code
    asset.world_matrices()
    asset.bounds()
    asset.target_names  # noqa: B018
    return "loaded"


class Watchdog:
    """Dumps every stack and exits when one load runs past ``HANG_SECONDS`` (a hang). A
    thread rather than re-arming ``faulthandler`` per mutant, which costs a thread join."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.mutant = ""
        self.scratch: str | None = None  # removed on a hang: os._exit skips every cleanup
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="gltf-fuzz-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            started = self.started
            if started is not None and time.perf_counter() - started > HANG_SECONDS:
                print(f"HANG {self.mutant}: over {HANG_SECONDS} s", flush=True)
                faulthandler.dump_traceback(all_threads=True)
                if self.scratch:
                    shutil.rmtree(self.scratch, ignore_errors=True)
                os._exit(3)


class OpenSpy:
    """Records every path the loader opens (``Path.read_bytes`` for the file itself,
    ``os.open`` for external buffers and images) outside ``folder``: an escape."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.escapes: list[str] = []
        self._real_open, self._real_read = os.open, pathlib.Path.read_bytes

    def _check(self, file: Any) -> None:
        resolved = Path(file).resolve()
        if not resolved.is_relative_to(self.folder):
            self.escapes.append(str(resolved))

    def __enter__(self) -> OpenSpy:
        spy = self

        def spy_open(file, *args, **kwargs):
            spy._check(file)
            return spy._real_open(file, *args, **kwargs)

        def spy_read(path_self):
            spy._check(path_self)
            return spy._real_read(path_self)

        os.open, pathlib.Path.read_bytes = spy_open, spy_read
        return self

    def __exit__(self, *exc) -> None:
        os.open, pathlib.Path.read_bytes = self._real_open, self._real_read


def run(
    sources: list[Source], mutants: int, seed: int, only: str | None = None, out=sys.stdout
) -> dict[str, Any]:
    logging.getLogger("engine").setLevel(logging.ERROR)  # mutants warn about target names a lot
    findings: list[dict[str, Any]] = []
    outcomes: Counter[str] = Counter()
    slowest = (0.0, "")
    slowest_wall = 0.0
    watchdog = Watchdog()
    shm = Path("/dev/shm")  # tmpfs: rewriting a 2 MB file per mutant is cheaper there
    try:
        with tempfile.TemporaryDirectory(
            prefix="gltf-fuzz-", dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        ) as tmp:
            # A decoy next to the mutant's folder, so a uri that escapes would find data (and
            # the OpenSpy reports it whatever the outcome).
            watchdog.scratch = tmp
            folder = Path(tmp) / "package"
            folder.mkdir()
            (Path(tmp) / "x").write_bytes(os.urandom(64))
            path = folder / "mutant.glb"
            for source in sources:  # warm up: imports, PIL plugins, numpy
                exercise(source.path)
            baseline = rss_mb()
            for source in sources:
                for i in range(mutants):
                    mutant_id = f"{source.name}:{i}"
                    if only is not None and mutant_id != only:
                        continue
                    rng = random.Random(f"{seed}:{mutant_id}")
                    data, what = make_mutant(source, rng)
                    path.write_bytes(data)
                    watchdog.mutant = f"{mutant_id} ({what})"
                    start = watchdog.started = time.perf_counter()
                    cpu_start = time.thread_time()
                    try:
                        with OpenSpy(folder) as spy:
                            outcome = exercise(path)
                        if spy.escapes:
                            findings.append(
                                {
                                    "id": mutant_id,
                                    "mutation": what,
                                    "error": f"opened outside the folder: {spy.escapes}",
                                }
                            )
                    except Exception as exc:  # the finding this fuzzer exists for
                        outcome = f"UNCODED {type(exc).__name__}"
                        findings.append(
                            {
                                "id": mutant_id,
                                "mutation": what,
                                "error": f"{type(exc).__name__}: {exc}"[:300],
                            }
                        )
                    finally:
                        watchdog.started = None
                    # The 1 s bar is on CPU time: on a shared CI machine wall time measures the
                    # neighbours (a real hang is the watchdog's, at 10 s of wall time).
                    elapsed = time.thread_time() - cpu_start
                    wall = time.perf_counter() - start
                    if (
                        outcome.startswith("UNCODED") is False
                        and outcome not in CODED
                        and outcome != "loaded"
                    ):
                        findings.append(
                            {
                                "id": mutant_id,
                                "mutation": what,
                                "error": f"unexpected code {outcome}",
                            }
                        )
                    if elapsed > MAX_SECONDS:
                        findings.append(
                            {"id": mutant_id, "mutation": what, "error": f"took {elapsed:.2f} s"}
                        )
                    if elapsed > slowest[0]:
                        slowest = (elapsed, mutant_id)
                    slowest_wall = max(slowest_wall, wall)
                    outcomes[outcome] += 1
                    if only is not None:
                        print(
                            f"{mutant_id}: {what} -> {outcome} in {elapsed * 1000:.1f} ms CPU",
                            file=out,
                        )
    finally:
        watchdog.stop()
    growth = rss_mb() - baseline
    if growth > MAX_GROWTH_MB:
        findings.append({"id": "*", "mutation": "all", "error": f"peak RSS grew {growth:.0f} MB"})
    summary = {
        "seed": seed,
        "mutants": sum(outcomes.values()),
        "outcomes": dict(outcomes.most_common()),
        "slowest_ms": round(slowest[0] * 1000, 1),  # CPU time of the slowest load
        "slowest": slowest[1],
        "slowest_wall_ms": round(slowest_wall * 1000, 1),
        "peak_rss_growth_mb": round(growth, 1),
        "findings": findings[:50],
        "finding_count": len(findings),
    }
    return summary


def bundled_glbs() -> list[Path]:
    return sorted((ROOT / "assets" / "avatars").glob("*/*.glb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mutants", type=int, default=2000, help="per GLB")
    parser.add_argument("--glb", type=Path, action="append", help="default: every bundled avatar")
    parser.add_argument("--only", help="replay one mutant, e.g. kai:417")
    args = parser.parse_args(argv)
    sources = [Source(p) for p in (args.glb or bundled_glbs())]
    start = time.perf_counter()
    summary = run(sources, args.mutants, args.seed, args.only)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    for finding in summary["findings"]:
        print(f"FINDING {finding['id']}: {finding['mutation']}: {finding['error']}")
    print(json.dumps(summary))
    return 1 if summary["finding_count"] else 0


if __name__ == "__main__":
    sys.exit(main())
