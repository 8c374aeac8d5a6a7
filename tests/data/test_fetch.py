"""graphrec.data.fetch: downloads from a local HTTP server, pins, atomic install, real recipes.

Everything is offline: a ``ThreadingHTTPServer`` on 127.0.0.1 serves files the tests make
in memory.  The real-recipe tests rebuild each dataset's upstream inputs from the
reference copies in ``../shared/data`` (never from the repository) and check that the real
builders reproduce the real output pins; they are skipped where that folder is absent.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import io
import json
import os
import pickle
import socket
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from graphrec.data.fetch import (
    MANIFEST,
    RECIPES,
    Recipe,
    RestrictedUnpickler,
    Source,
    default_cache_dir,
    fetch,
    fetch_recipe,
    git_blob_id,
)
from graphrec.data.fetch_builders import rlmrec_builder
from graphrec.errors import ConfigError, DataFormatError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclasses.dataclass
class Server:
    """What the test server serves (path -> body), how often each path was asked for,
    and paths whose Content-Length overstates the body by some bytes."""

    base: str = ""
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)
    hits: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    overstate: dict[str, int] = dataclasses.field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            name = self.path.lstrip("/")
            state.hits[name] += 1
            if name not in state.files:
                self.send_error(404)
                return
            body = state.files[name]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + state.overstate.get(name, 0)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def upper_build(raw: Path, out: Path) -> None:
    """The toy builder: each source NAME becomes NAME.out, upper-cased."""
    for path in sorted(raw.iterdir()):
        (out / f"{path.name}.out").write_bytes(path.read_bytes().upper())


def toy_recipe(
    server: Server,
    files: dict[str, bytes],
    build: Callable[[Path, Path], None] = upper_build,
    name: str = "toy",
    pin: str = "sha256",
) -> Recipe:
    """Serve ``files`` and return a recipe pinning them (by ``pin``) and the toy outputs."""
    server.files.update(files)
    sources = tuple(
        Source(
            n, server.url(n), size=len(d), **{pin: sha(d) if pin == "sha256" else git_blob_id(d)}
        )
        for n, d in files.items()
    )
    outputs = {f"{n}.out": sha(d.upper()) for n, d in files.items()}
    return Recipe(
        name=name, sources=sources, build=build, outputs=outputs, card="toy data, no licence"
    )


def assert_nothing_installed(cache: Path, name: str = "toy") -> None:
    assert not (cache / name).exists()
    assert not list(cache.glob(".staging-*"))


FILES = {"a.txt": b"alpha\n", "b.txt": b"beta\n" * 100}


# ------------------------------------------------------------------ the happy path
def test_fetch_installs_verified_files_once(server: Server, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    recipe = toy_recipe(server, FILES)
    folder = fetch_recipe(recipe, cache, progress=False)
    assert folder == cache / "toy"
    assert (folder / "b.txt.out").read_bytes() == FILES["b.txt"].upper()
    assert sorted(p.name for p in folder.iterdir()) == sorted(["a.txt.out", "b.txt.out", MANIFEST])
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["dataset"] == "toy" and manifest["outputs"] == dict(recipe.outputs)
    a = next(s for s in manifest["sources"] if s["name"] == "a.txt")
    assert a["url"] == server.url("a.txt") and a["sha256"] == sha(FILES["a.txt"])
    assert a["git_blob"] == git_blob_id(FILES["a.txt"])
    assert a["pinned"] == ["size", "sha256"]
    assert dict(server.hits) == {"a.txt": 1, "b.txt": 1}
    assert fetch_recipe(recipe, cache, progress=False) == folder  # already there: no download
    assert dict(server.hits) == {"a.txt": 1, "b.txt": 1}
    assert_nothing_installed(cache, "other")


def test_card_is_shown_and_progress_runs(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    fetch_recipe(toy_recipe(server, FILES), tmp_path, progress=True)
    assert "toy: toy data, no licence" in capsys.readouterr().err


def test_git_blob_id_matches_git() -> None:
    assert (
        git_blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    )  # `git hash-object /dev/null`
    assert git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_default_cache_dir_honours_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "graphrec" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "graphrec" / "datasets"


# ------------------------------------------------------------------ failures leave nothing behind
@pytest.mark.parametrize("pin", ["sha256", "git_blob"])
def test_checksum_mismatch_names_url_and_both_hashes(
    server: Server, tmp_path: Path, pin: str
) -> None:
    built = []
    recipe = toy_recipe(server, FILES, build=lambda raw, out: built.append(raw), pin=pin)
    server.files["b.txt"] = b"BETA\n" * 100  # same size, other content
    expected = getattr(recipe.sources[1], pin)
    got = sha(server.files["b.txt"]) if pin == "sha256" else git_blob_id(server.files["b.txt"])
    with pytest.raises(DataFormatError) as err:
        fetch_recipe(recipe, tmp_path, progress=False)
    message = str(err.value)
    assert (
        server.url("b.txt") in message
        and "mismatch" in message
        and expected in message
        and got in message
    )
    assert built == []  # nothing reads a file whose pin failed
    assert_nothing_installed(tmp_path)


def _overstate_length(server: Server) -> None:
    server.overstate["b.txt"] = 1000


def _shorten(server: Server) -> None:
    server.files["b.txt"] = FILES["b.txt"][:-7]


def _lengthen(server: Server) -> None:
    server.files["b.txt"] = FILES["b.txt"] * 1000


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            _overstate_length,
            r"truncated download: got 500 of 1500 bytes",
        ),  # body shorter than Content-Length
        (
            _shorten,
            r"truncated download: got 493 of 500 bytes",
        ),  # file shorter than its pinned size
        (_lengthen, "size mismatch: expected 500 bytes, got more"),  # longer than pinned: cut off
    ],
)
def test_a_download_of_the_wrong_length_is_refused(
    server: Server, tmp_path: Path, damage, message
) -> None:
    recipe = toy_recipe(server, FILES)
    damage(server)
    with pytest.raises(DataFormatError, match=message) as err:
        fetch_recipe(recipe, tmp_path, progress=False)
    assert server.url("b.txt") in str(err.value)
    assert_nothing_installed(tmp_path)


def test_unreachable_server_names_url(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/a.txt"
    recipe = Recipe("toy", (Source("a.txt", url, sha256=sha(b"x")),), upper_build, {}, "toy")
    with pytest.raises(DataFormatError, match="cannot reach URL") as err:
        fetch_recipe(recipe, tmp_path, progress=False, timeout=5)
    assert url in str(err.value)
    assert_nothing_installed(tmp_path)


def test_http_error_names_status(server: Server, tmp_path: Path) -> None:
    recipe = toy_recipe(server, FILES)
    del server.files["a.txt"]
    with pytest.raises(DataFormatError, match="HTTP 404") as err:
        fetch_recipe(recipe, tmp_path, progress=False)
    assert server.url("a.txt") in str(err.value)
    assert_nothing_installed(tmp_path)


def test_output_pin_mismatch_installs_nothing(server: Server, tmp_path: Path) -> None:
    recipe = toy_recipe(server, FILES)
    recipe = dataclasses.replace(
        recipe, outputs={**recipe.outputs, "a.txt.out": sha(b"something else")}
    )
    with pytest.raises(DataFormatError, match="sha256 mismatch") as err:
        fetch_recipe(recipe, tmp_path, progress=False)
    assert "toy/a.txt.out" in str(err.value) and sha(b"ALPHA\n") in str(err.value)
    assert_nothing_installed(tmp_path)


def test_unpinned_or_missing_output_is_refused(server: Server, tmp_path: Path) -> None:
    recipe = toy_recipe(server, FILES)
    only_a = dataclasses.replace(recipe, outputs={"a.txt.out": recipe.outputs["a.txt.out"]})
    with pytest.raises(DataFormatError, match="unpinned files"):
        fetch_recipe(only_a, tmp_path, progress=False)
    with_c = dataclasses.replace(recipe, outputs={**recipe.outputs, "c.out": sha(b"")})
    with pytest.raises(DataFormatError, match="did not produce c.out"):
        fetch_recipe(with_c, tmp_path, progress=False)
    assert_nothing_installed(tmp_path)


def test_builder_exception_cleans_up(server: Server, tmp_path: Path) -> None:
    def broken(raw: Path, out: Path) -> None:
        (out / "half.txt").write_text("half")
        raise RuntimeError("builder crashed")

    with pytest.raises(RuntimeError, match="builder crashed"):
        fetch_recipe(toy_recipe(server, FILES, build=broken), tmp_path, progress=False)
    assert_nothing_installed(tmp_path)


def test_force_replaces_only_after_success(server: Server, tmp_path: Path) -> None:
    good = toy_recipe(server, FILES)
    folder = fetch_recipe(good, tmp_path, progress=False)
    (folder / "marker").write_text("old copy")
    bad = dataclasses.replace(good, outputs={**good.outputs, "a.txt.out": sha(b"wrong")})
    with pytest.raises(DataFormatError):
        fetch_recipe(bad, tmp_path, force=True, progress=False)
    assert (folder / "marker").read_text() == "old copy"  # the failed refresh left it alone
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]
    assert fetch_recipe(good, tmp_path, force=True, progress=False) == folder
    assert not (folder / "marker").exists() and (folder / "a.txt.out").read_bytes() == b"ALPHA\n"
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]
    assert server.hits["a.txt"] == 3


def test_a_copy_installed_meanwhile_is_kept(server: Server, tmp_path: Path) -> None:
    def racing(raw: Path, out: Path) -> None:  # another process finishes first
        (tmp_path / "toy").mkdir()
        (tmp_path / "toy" / "theirs").write_text("theirs")
        upper_build(raw, out)

    assert (
        fetch_recipe(toy_recipe(server, FILES, build=racing), tmp_path, progress=False)
        == tmp_path / "toy"
    )
    assert [p.name for p in (tmp_path / "toy").iterdir()] == ["theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]


# ------------------------------------------------------------------ recipes and names
def test_recipe_needs_a_pin_somewhere() -> None:
    loose = Source("x.bin", "https://example.org/x.bin")
    with pytest.raises(ConfigError, match="no sha256/git_blob pin"):
        Recipe("toy", (loose,), upper_build, {}, "toy")
    Recipe("toy", (loose,), upper_build, {"x.bin.out": "0" * 64}, "toy")  # output pins vouch for it
    with pytest.raises(ConfigError, match="plain file name"):
        Source("../x", "https://example.org/x", sha256="0" * 64)
    with pytest.raises(ConfigError, match="http"):
        Source("x", "file:///etc/passwd", sha256="0" * 64)


def test_fetch_by_name(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match="fetchable: amazon18-scientific, ml-100k, rlmrec-amazon-book, rlmrec-yelp",
    ):
        fetch("no-such-data", tmp_path)
    with pytest.raises(ConfigError, match="no automatic fetch") as err:
        fetch("ml-latest-small-tmdb", tmp_path)
    assert "GRAPHREC_DATA_DIR" in str(err.value) and "tmdb_5000_movies.csv" in str(err.value)
    (tmp_path / "rlmrec-yelp").mkdir()
    assert (
        fetch("rlmrec-yelp", tmp_path, progress=False) == tmp_path / "rlmrec-yelp"
    )  # there: no network


def test_every_real_recipe_pins_its_sources_or_outputs() -> None:
    for recipe in RECIPES.values():
        assert recipe.outputs and all(s.url.startswith("https://") for s in recipe.sources)
    assert all(s.git_blob and s.size for s in RECIPES["rlmrec-yelp"].sources)


# ------------------------------------------------------------------ restricted unpickling
class Evil:
    def __reduce__(self) -> tuple:
        return os.system, ("echo pwned > /dev/null",)


@pytest.mark.parametrize("payload", [Evil(), print, collections.OrderedDict()])
def test_restricted_unpickler_refuses_other_globals(payload: object) -> None:
    with pytest.raises(DataFormatError, match="refusing to unpickle"):
        RestrictedUnpickler(io.BytesIO(pickle.dumps(payload)), origin="evil.pkl").load()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_restricted_unpickler_reads_sparse_matrices(protocol: int) -> None:
    matrix = sp.coo_matrix((np.ones(3, dtype=np.float32), ([0, 1, 2], [1, 2, 0])), shape=(3, 4))
    loaded = RestrictedUnpickler(io.BytesIO(pickle.dumps(matrix, protocol=protocol))).load()
    assert (loaded != matrix).nnz == 0 and loaded.shape == (3, 4)
    assert (
        RestrictedUnpickler(io.BytesIO(pickle.dumps(matrix.tocsr(), protocol=protocol))).load()
        != matrix
    ).nnz == 0


def test_malicious_pickle_with_a_valid_pin_is_not_executed(server: Server, tmp_path: Path) -> None:
    flag = tmp_path / "pwned"

    class Touch:
        def __reduce__(self) -> tuple:
            return os.system, (f"touch {flag}",)

    data = pickle.dumps(Touch())
    server.files["trn_mat.pkl"] = data
    source = Source(
        "trn_mat.pkl", server.url("trn_mat.pkl"), git_blob=git_blob_id(data), size=len(data)
    )
    recipe = Recipe(
        "evil", (source,), rlmrec_builder("evil", (2, 2), {"train": ("trn_mat.pkl", 1)}), {}, "evil"
    )
    with pytest.raises(DataFormatError, match="refusing to unpickle .*system"):
        fetch_recipe(recipe, tmp_path / "cache", progress=False)
    assert not flag.exists()
    assert_nothing_installed(tmp_path / "cache", "evil")


# ------------------------------------------------------------------ the real recipes, offline
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"reference data not found at {SHARED}"
)


def localized(
    recipe: Recipe, server: Server, files: dict[str, bytes], keep_pins: tuple[str, ...] = ()
) -> Recipe:
    """``recipe`` with its sources served by ``server``; pins replaced by the fixture's except ``keep_pins``.

    The output pins stay the real ones: the built files must match them.
    """
    server.files.update(files)
    sources = []
    for s in recipe.sources:
        if s.name in keep_pins:
            sources.append(dataclasses.replace(s, url=server.url(s.name)))
        else:
            data = files[s.name]
            pins = {"git_blob": git_blob_id(data), "size": len(data), "sha256": None}
            sources.append(dataclasses.replace(s, url=server.url(s.name), **pins))
    return dataclasses.replace(recipe, sources=tuple(sources))


def inter_pickle(path: Path, shape: tuple[int, int]) -> bytes:
    """Pickled coo_matrix of an .inter file, non-zeros in reverse order (the builder sorts)."""
    pairs = np.array(
        [line.split("\t") for line in path.read_text().splitlines()[1:]], dtype=np.int64
    )[::-1]
    return pickle.dumps(
        sp.coo_matrix(
            (np.ones(len(pairs), dtype=np.float32), (pairs[:, 0], pairs[:, 1])), shape=shape
        )
    )


def check_installed(folder: Path, recipe: Recipe) -> None:
    for name, pin in recipe.outputs.items():
        assert sha((folder / name).read_bytes()) == pin, name
    assert sorted(p.name for p in folder.iterdir()) == sorted([*recipe.outputs, MANIFEST])


@needs_shared
@pytest.mark.parametrize(
    "name, shape", [("rlmrec-yelp", (11091, 11010)), ("rlmrec-amazon-book", (11000, 9332))]
)
def test_real_rlmrec_recipe_rebuilds_the_reference(
    server: Server, tmp_path: Path, name: str, shape: tuple[int, int]
) -> None:
    recipe = RECIPES[name]
    files = {
        f"{short}_mat.pkl": inter_pickle(SHARED / name / f"{name}.{split}.inter", shape)
        for short, split in (("trn", "train"), ("val", "valid"), ("tst", "test"))
    }
    copies = [s.name for s in recipe.sources if s.name not in files]
    files.update(
        {c: (SHARED / name / c).read_bytes() for c in copies}
    )  # verbatim files keep their real pins
    folder = fetch_recipe(
        localized(recipe, server, files, keep_pins=tuple(copies)), tmp_path, progress=False
    )
    check_installed(folder, recipe)


def read_tsv(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:] if line]


def scientific_inputs(folder: Path) -> dict[str, bytes]:
    """Upstream-shaped inputs rebuilt from the reference TSVs (LC-Rec's '.' suffixes, ',' paths)."""
    inter: dict[str, list[int]] = {}
    for row in read_tsv(folder / "interactions.tsv"):
        inter.setdefault(row["user_id"], []).append(int(row["item_id"]))
    items, text = {}, ["item_id:token\ttext:token_seq"]
    for row in read_tsv(folder / "items.tsv"):
        items[row["item_id"]] = {
            "title": row["title"] + ".",
            "description": row["description"] or ".",
            "brand": row["brand"],
            "categories": row["categories"].replace(" > ", ","),
        }
        if row["asin"]:
            text.append(f"{row['asin']}\t{row['title']}. Industrial & Scientific")
    return {
        "Scientific.inter.json": json.dumps(inter).encode(),
        "Scientific.item.json": json.dumps(items).encode(),
        "Scientific.item2index": b"",
        "Scientific.text": ("\n".join(text) + "\n").encode(),
    }


@needs_shared
def test_real_amazon18_scientific_recipe_rebuilds_the_reference(
    server: Server, tmp_path: Path
) -> None:
    recipe = RECIPES["amazon18-scientific"]
    served = localized(recipe, server, scientific_inputs(SHARED / "amazon18-scientific"))
    folder = fetch_recipe(served, tmp_path, progress=False)
    check_installed(folder, recipe)


@needs_shared
def test_real_ml_100k_recipe_from_a_mirror(server: Server, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("recbole/__init__.py", "")
        for name in RECIPES["ml-100k"].outputs:
            archive.writestr(
                f"recbole/dataset_example/ml-100k/{name}", (SHARED / "ml-100k" / name).read_bytes()
            )
    server.files["recbole-1.2.1-py3-none-any.whl"] = buffer.getvalue()
    folder = fetch(
        "ml-100k", tmp_path, base_url=server.base + "/", progress=False
    )  # the real, unpinned source
    check_installed(folder, RECIPES["ml-100k"])
    assert json.loads((folder / MANIFEST).read_text())["sources"][0]["pinned"] == []


def test_wheel_without_the_dataset_is_refused(server: Server, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("recbole/__init__.py", "")
    server.files["recbole-1.2.1-py3-none-any.whl"] = buffer.getvalue()
    with pytest.raises(
        DataFormatError, match="no member recbole/dataset_example/ml-100k/ml-100k.inter"
    ):
        fetch("ml-100k", tmp_path, base_url=server.base, progress=False)
    assert_nothing_installed(tmp_path, "ml-100k")
