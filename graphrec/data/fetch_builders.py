"""Builders for :mod:`graphrec.data.fetch`: turn verified downloads into a dataset's files.

Each builder has the signature ``build(raw: Path, out: Path) -> None``: ``raw`` holds the
downloaded sources under their :class:`~graphrec.data.fetch.Source` names (already checked
against their pins), ``out`` is the empty folder to write the dataset into.  The outputs
must be byte-identical to the reference copies the recipes pin, so every builder here is
a faithful port of the script that made those copies (``build.py`` beside each reference
folder); deviations would show up as an output-pin mismatch, never as silently different
data.

The RLMRec splits are pickled ``scipy.sparse`` matrices.  Unpickling runs arbitrary code
in general, so it goes through :class:`RestrictedUnpickler`, which admits only the numpy
and scipy.sparse names such a pickle needs.
"""

from __future__ import annotations

import codecs
import collections
import html
import io
import json
import pickle
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from graphrec.errors import DataFormatError

try:  # numpy >= 2 moved the pickle helpers to numpy._core
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

__all__ = [
    "RestrictedUnpickler",
    "amazon18_scientific_builder",
    "copy_builder",
    "load_sparse_pickle",
    "recbole_wheel_builder",
    "rlmrec_builder",
]

Builder = Callable[[Path, Path], None]

#: numpy globals a pickled array needs, under the module names numpy 1.x and 2.x write.
_NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
for _core in ("numpy.core", "numpy._core"):
    _NUMPY_GLOBALS[(f"{_core}.multiarray", "_reconstruct")] = _multiarray._reconstruct
    _NUMPY_GLOBALS[(f"{_core}.multiarray", "scalar")] = _multiarray.scalar
    # pickle protocol 5; numpy's stubs omit the private _frombuffer, which exists at runtime
    _NUMPY_GLOBALS[(f"{_core}.numeric", "_frombuffer")] = _numeric._frombuffer  # type: ignore[attr-defined]
#: protocol-2 pickles encode bytes through this pure function.
_NUMPY_GLOBALS[("_codecs", "encode")] = codecs.encode
#: sparse classes, looked up on ``scipy.sparse`` whatever (old, private) module the pickle names.
_SPARSE_CLASSES = frozenset(
    {"coo_matrix", "csr_matrix", "csc_matrix", "coo_array", "csr_array", "csc_array"}
)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and scipy.sparse matrices, and nothing else.

    ``pickle`` resolves every global a stream names and calls it, so a stream can run any
    function (``os.system`` included).  This subclass refuses every global outside an
    explicit allow-list, so a tampered file fails with :class:`DataFormatError` instead of
    executing code.  It is used only on files whose pins were already checked, as a second
    line of defence; for sources without a pin it is the only one.
    """

    def __init__(self, file: io.BufferedIOBase, origin: str = "<pickle>") -> None:
        super().__init__(file)
        self.origin = origin

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed global; raise :class:`DataFormatError` for anything else."""
        if (module, name) in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[(module, name)]
        if (
            module == "scipy.sparse" or module.startswith("scipy.sparse.")
        ) and name in _SPARSE_CLASSES:
            return getattr(sp, name)
        raise DataFormatError(
            f"refusing to unpickle {module}.{name}: only numpy arrays and scipy.sparse matrices are allowed",
            path=self.origin,
        )


def load_sparse_pickle(path: Path) -> sp.coo_matrix:
    """The sparse matrix pickled in ``path`` (restricted unpickling), as COO."""
    try:
        with open(path, "rb") as fh:
            obj = RestrictedUnpickler(fh, origin=str(path.name)).load()
    except DataFormatError:
        raise
    except Exception as exc:  # a corrupt stream can fail in many ways
        raise DataFormatError(
            f"cannot unpickle a sparse matrix: {type(exc).__name__}: {exc}", path=path.name
        ) from exc
    if not sp.issparse(obj):
        raise DataFormatError(
            f"expected a scipy.sparse matrix, found {type(obj).__name__}", path=path.name
        )
    return sp.coo_matrix(obj)


# ------------------------------------------------------------------ RLMRec
INTER_HEADER = "user_id:token\titem_id:token\n"


def inter_bytes(
    matrix: sp.coo_matrix, shape: tuple[int, int], n_expected: int, origin: str
) -> bytes:
    """RecBole ``.inter`` bytes of a 0/1 matrix: its non-zeros sorted by (user, item), LF.

    Same checks and output as the reference ``rlmrec-yelp/build.py``: shape, all values 1,
    the expected number of distinct pairs.
    """
    if tuple(matrix.shape) != tuple(shape):
        raise DataFormatError(
            f"matrix shape {tuple(matrix.shape)}, expected {tuple(shape)}", path=origin
        )
    if not (matrix.data == 1).all():
        raise DataFormatError("matrix has values other than 1", path=origin)
    pairs = sorted(zip(matrix.row.tolist(), matrix.col.tolist()))
    if len(pairs) != n_expected or len(set(pairs)) != len(pairs):
        raise DataFormatError(
            f"{len(pairs)} entries (or duplicates), expected {n_expected} distinct", path=origin
        )
    return (INTER_HEADER + "".join(f"{u}\t{i}\n" for u, i in pairs)).encode("ascii")


def rlmrec_builder(
    name: str,
    shape: tuple[int, int],
    splits: Mapping[str, tuple[str, int]],
    copies: tuple[str, ...] = (),
) -> Builder:
    """A builder writing ``NAME.{split}.inter`` from pickled matrices, plus verbatim ``copies``.

    ``splits`` maps a split name (train/valid/test) to (source file name, interactions).
    """

    def build(raw: Path, out: Path) -> None:
        for split, (source, n_expected) in splits.items():
            matrix = load_sparse_pickle(raw / source)
            (out / f"{name}.{split}.inter").write_bytes(
                inter_bytes(matrix, shape, n_expected, source)
            )
        copy_builder(copies)(raw, out)

    return build


def copy_builder(names: tuple[str, ...]) -> Builder:
    """A builder copying sources unchanged (id maps, licence texts)."""

    def build(raw: Path, out: Path) -> None:
        for file_name in names:
            (out / file_name).write_bytes((raw / file_name).read_bytes())

    return build


# ------------------------------------------------------------------ RecBole wheel
def recbole_wheel_builder(
    wheel: str, member_dir: str, names: tuple[str, ...], max_bytes: int = 256 << 20
) -> Builder:
    """A builder extracting ``member_dir/NAME`` for each of ``names`` from a wheel (a zip).

    ``max_bytes`` caps each member's declared size, so a hostile archive cannot fill the disk.
    """

    def build(raw: Path, out: Path) -> None:
        try:
            with zipfile.ZipFile(raw / wheel) as archive:
                for file_name in names:
                    member = f"{member_dir}/{file_name}"
                    try:
                        info = archive.getinfo(member)
                    except KeyError:
                        raise DataFormatError(
                            f"the archive has no member {member}", path=wheel
                        ) from None
                    if info.file_size > max_bytes:
                        message = f"member {member} is {info.file_size} bytes, over {max_bytes}"
                        raise DataFormatError(message, path=wheel)
                    (out / file_name).write_bytes(archive.read(member))
        except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
            raise DataFormatError(f"not a readable zip archive: {exc}", path=wheel) from exc

    return build


# ------------------------------------------------------------------ Amazon 2018 Scientific
#: Port of ``amazon18-scientific/build.py`` (stdlib only); statistics are not rebuilt.
ROOT_CATEGORY = "Industrial & Scientific"


def clean_field(text: str) -> str:
    """Make a value safe for a quote-free TSV: HTML unescaped, no tabs/newlines, trimmed."""
    text = html.unescape(text or "")
    text = re.sub(r"[\t\r\n]+", " ", text)
    text = re.sub(r" {2,}", " ", text)
    return text.strip()


def is_empty_text(text: str) -> bool:
    """True for LC-Rec's rendering of an empty field ("." or " .")."""
    return text.strip().rstrip(".").strip() == ""


def split_categories(path: str) -> list[str]:
    """Split LC-Rec's category path on bare commas (names holding a comma use ", ").

    The path is cut at the first element that is clearly not a category name (scraped
    bullets with "&amp;", over 60 characters, or pack-size variants such as "2 pack").
    """
    if not path:
        return []
    out = []
    for part in (p.strip() for p in re.split(r",(?! )", path)):
        if (
            not part
            or "&amp;" in part
            or len(part) > 60
            or re.fullmatch(r"\d+\s*(pack|count|pcs?)", part, re.I)
        ):
            break
        out.append(html.unescape(part))
    return out


def norm_title(text: str) -> str:
    """Lower-case alphanumerics only: the key for matching titles across exports."""
    return re.sub(r"[^a-z0-9]", "", html.unescape(text).lower())


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"not valid JSON: {exc}", path=path.name) from exc
    if not isinstance(data, dict):
        raise DataFormatError(
            f"expected a JSON object, found {type(data).__name__}", path=path.name
        )
    return data


ITEM_FIELDS = ("title", "description", "brand", "categories")


def check_export(inter: dict, items: dict, origin: str) -> None:
    """The export's invariants: contiguous ids, distinct int items per user, same item set, text fields."""
    try:
        item_ids = sorted(int(k) for k in items)
        user_ids = sorted(int(k) for k in inter)
    except ValueError as exc:
        raise DataFormatError(f"non-integer id: {exc}", path=origin) from exc
    if item_ids != list(range(len(items))) or user_ids != list(range(len(inter))):
        raise DataFormatError("user or item ids are not contiguous from 0", path=origin)
    seen: set = set()
    for user, seq in inter.items():
        if (
            not isinstance(seq, list)
            or not all(type(i) is int for i in seq)
            or len(seq) != len(set(seq))
        ):
            raise DataFormatError(
                f"user {user}: not a list of distinct integer item ids", path=origin
            )
        seen.update(seq)
    if seen != set(item_ids):
        raise DataFormatError(
            "the items of the interactions and of the item file differ", path=origin
        )
    for key, value in items.items():
        if not isinstance(value, dict) or not all(
            isinstance(value.get(f), str) for f in ITEM_FIELDS
        ):
            raise DataFormatError(
                f"item {key}: expected string fields {', '.join(ITEM_FIELDS)}", path=origin
            )


def recover_asins(items: dict, text_path: Path) -> dict[str, str]:
    """Item id -> ASIN, where a UniSRec-format title matches exactly one item and vice versa."""
    by_title = collections.defaultdict(list)
    for key, value in items.items():
        by_title[norm_title(value["title"].rstrip("."))].append(key)
    uni_by_title = collections.defaultdict(list)
    for number, line in enumerate(text_path.read_bytes().decode("utf-8").splitlines()[1:], start=2):
        if "\t" not in line:
            raise DataFormatError("expected 'asin<TAB>text'", path=text_path.name, line=number)
        asin, text = line.split("\t", 1)
        title = text.split(". " + ROOT_CATEGORY)[0]
        uni_by_title[norm_title(title.rstrip("."))].append(asin)
    asin_of = {}
    for title, asins in uni_by_title.items():
        keys = by_title.get(title, [])
        if len(asins) == 1 and len(keys) == 1:
            asin_of[keys[0]] = asins[0]
    return asin_of


def write_interactions(inter: dict, path: Path) -> None:
    """``interactions.tsv``: users in id order, items in upstream (chronological) order."""
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("user_id\titem_id\trating\ttimestamp\tseq_idx\n")
        for user in sorted(inter, key=int):
            for pos, item in enumerate(inter[user]):
                fh.write(f"{user}\t{item}\t\t\t{pos}\n")


def item_row(value: Mapping[str, str]) -> tuple[str, str, str, list[str]]:
    """(title, description, brand, category path) of one upstream item record."""
    title = clean_field(value["title"])
    if title.endswith("."):  # LC-Rec appended a '.' to every title
        title = title[:-1].rstrip()
    desc = "" if is_empty_text(value["description"]) else clean_field(value["description"])
    return title, desc, clean_field(value["brand"]), split_categories(value["categories"])


def write_items_and_facts(
    items: dict, asin_of: Mapping[str, str], items_path: Path, facts_path: Path
) -> None:
    """``items.tsv`` and ``gold_facts.tsv`` (brand, category below the root, category_leaf)."""
    facts = []
    with open(items_path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("item_id\tasin\ttitle\tdescription\tbrand\tcategories\n")
        for key in sorted(items, key=int):
            title, desc, brand, cats = item_row(items[key])
            fh.write(
                "\t".join([key, asin_of.get(key, ""), title, desc, brand, " > ".join(cats)]) + "\n"
            )
            if brand:
                facts.append((key, "brand", brand))
            sub = [c for c in cats if c != ROOT_CATEGORY]
            if sub:
                facts.extend((key, "category", c) for c in dict.fromkeys(sub))
                facts.append((key, "category_leaf", sub[-1]))
    with open(facts_path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("item_id\trelation\tvalue\n")
        for row in facts:
            fh.write("\t".join(row) + "\n")


def amazon18_scientific_builder(inter_json: str, item_json: str, uni_text: str) -> Builder:
    """A builder for ``amazon18-scientific``: interactions.tsv, items.tsv, gold_facts.tsv.

    ``uni_text`` is decorec's UniSRec ``Scientific.text``, used only to recover ASINs.
    """

    def build(raw: Path, out: Path) -> None:
        inter, items = _load_json(raw / inter_json), _load_json(raw / item_json)
        check_export(inter, items, f"{inter_json} + {item_json}")
        asin_of = recover_asins(items, raw / uni_text)
        write_interactions(inter, out / "interactions.tsv")
        write_items_and_facts(items, asin_of, out / "items.tsv", out / "gold_facts.tsv")

    return build
