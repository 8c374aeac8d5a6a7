"""Small builders of test inputs."""

from __future__ import annotations

from pathlib import Path

TEXTS = {
    "1": (
        "Toy Story",
        "1995",
        "Led by Woody, Andy's toys live happily in his room until Buzz Lightyear arrives. A comedy about friendship.",
    ),
    "2": (
        "Jumanji",
        "1995",
        "When siblings Judy Shepherd and Peter Shepherd discover an enchanted board game, "
        "a war with the jungle begins.",
    ),
    "3": (
        "Heat",
        "1995",
        "Master criminal Neil McCauley plans one last heist while detective Vincent Hanna closes in on the family men.",
    ),
    "4": ("Empty", "1996", ""),
    "5": (
        "Sabrina",
        "1995",
        "An ugly duckling falls in love with playboy David Larrabee at a wedding.",
    ),
    "6": (
        "Casino",
        "1995",
        "Sam Rothstein runs a casino for the mob; love and revenge follow in Las Vegas.",
    ),
}


def write_items(
    path: Path, texts: dict[str, tuple[str, str, str]] = TEXTS, raw_lines: list[bytes] | None = None
) -> Path:
    lines = [b"item_id\ttitle\tyear\tgenres\toverview\ttagline"]
    for item_id, (title, year, overview) in texts.items():
        lines.append("\t".join([item_id, title, year, "Drama", overview, ""]).encode("utf-8"))
    lines.extend(raw_lines or [])
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def write_gold(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text(
        "item_id\trelation\tvalue\tsource\n"
        + "".join(f"{i}\t{r}\t{v}\ttest\n" for i, r, v in rows),
        encoding="utf-8",
    )
    return path
