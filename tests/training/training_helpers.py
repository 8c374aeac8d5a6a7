"""Helpers of the training tests (a module of its own so tests import it by a unique name)."""

from pathlib import Path


def write_atomic_dataset(data, folder: Path) -> Path:
    """``data``'s splits as pre-split RecBole atomic files: a dataset train.py loads by directory."""
    folder.mkdir()
    for split in ("train", "valid", "test"):
        coo = getattr(data, split).tocoo()
        rows = "".join(
            f"{data.user_ids[u]}\t{data.item_ids[i]}\n" for u, i in zip(coo.row, coo.col)
        )
        (folder / f"tiny.{split}.inter").write_text("user_id:token\titem_id:token\n" + rows)
    return folder
