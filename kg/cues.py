"""Context cues: whether the words around a name say it holds a credit *here*.

A director credited on other items is often named in an overview in another role: the
subject of a documentary ("the life and career of Francis Ford Coppola"), an interviewee
in a list ("such as James Cameron, David Fincher, ..."), the author of the source ("Based
on Frank Miller's graphic novel"), the maker of the film this one follows or remakes ("In
the sequel to Paul Verhoeven's ..."), an actor ("Brutus (Benoît Poelvoorde)"), a place
("John Hughes High School").  Recognising the name is not enough for ``directed_by``: it
is kept only where the text itself says so, a *director cue* ("directed by", "director",
"from", "a film by", "X's film", "X directs") nearer to the name than any *other-role cue*
("starring", "based on", "sequel to", "producers", "such as", "(X)", "X's novel", "X as").
With no cue at all the name is left out (abstaining costs recall, not precision).

The same cues, read the other way, recognise directors no other item credits: a proper
name right after a strong cue ("directed by Hampton Fancher", "director Sidney Lumet").

English cues, hand-written from the development fold (fold 0 of ml-latest-small-tmdb's
crc32 split) and checked on the other fold; see ``benchmarks/kg_deterministic_steps.py``.
"""

from __future__ import annotations

import re

from kg.text import match_key

#: words a sentence ends with; a cue never reaches across them
_SENTENCE = re.compile(r"[.!?;]\s")
#: the window of text read on each side of a name, in characters
_WINDOW = 60
#: before the name: "directed by", "director", "from", "a film by", "helmed by" (a few words
#: may sit between: "directed by Academy Award winner X", "from American director X")
_DIRECTOR_BEFORE = re.compile(
    r"\b(?:(?:co-)?direct(?:ed|or|ors|ing)|filmmaker|helmed|films?\s+by|from)\b[^.;!?]{0,25}$",
    re.IGNORECASE,
)
#: after the name: "X's <up to 3 words> film", "X directs", "X film", "X, the director"
_DIRECTOR_AFTER = re.compile(
    r"^(?:['’]s?\s+(?:[\w/-]+\s+){0,3}(?:films?|movies?|feature|debut|comedy|drama|thriller"
    r"|documentary|adaptation|take|version|classic|masterpiece|saga)\b"
    r"|\s+(?:directs|directed|films?\b|movie\b)|,\s+(?:the\s+)?director)",
    re.IGNORECASE,
)
#: before the name: another role, or another film's credit
_OTHER_BEFORE = re.compile(
    r"(?:\b(?:star(?:s|ring)?|with|based\s+on|sequel\s+to|remake\s+of|homage\s+to|narrated\s+by"
    r"|producers?|such\s+as|interviews?\s+with|like)\b[^.;!?]{0,30}|\(\s*)$",
    re.IGNORECASE,
)
#: after the name: "(X)" an actor's role, "X's novel", "X as <role>", "X High School"
_OTHER_AFTER = re.compile(
    r"^(?:\s*\)|['’]s?\s+(?:[\w-]+\s+){0,2}(?:novel|book|graphic|comic|play|story|poem|short)"
    r"|\s+as\b|\s+(?:production|high|school|street)\b)",
    re.IGNORECASE,
)
#: after the name, weaker: a bare possessive ("Mike Judge's slacker duo"), a director cue only
#: where no other-role cue is near ("an homage to François Truffaut's Shoot the Piano Player")
_POSSESSIVE_AFTER = re.compile(r"^['’]s?\s")
#: strong cues right before a name no other item credits ("directed by", "director"); a
#: "director" of something else is a character ("CIA director Bill Cabot", "casting director")
_STRONG_BEFORE = re.compile(
    r"(?<!(?-i:[A-Z]{2}) )(?<!casting )(?<!art )(?<!music )(?<!musical )(?<!funeral )(?<!museum )"
    r"\b(?:(?:co-)?directed\s+by|(?:writer[-/])?director|filmmaker|a\s+film\s+by|helmed\s+by)"
    r"\s+$",
    re.IGNORECASE,
)
#: words of an award, a title or a role, not of a name ("directed by Academy Award winner X",
#: "a film by X and Executive Producers Y")
_NOT_NAME_WORDS = {
    "academy",
    "award",
    "oscar",
    "winner",
    "winning",
    "the",
    "a",
    "an",
    "executive",
    "producer",
    "producers",
    "director",
    "writer",
    "actor",
    "actress",
}
_NAME_PARTICLES = {"de", "van", "von", "da", "del", "der", "di", "le", "la", "du"}
_TOKEN = re.compile(r"\w+")


def name_spans(text: str, key: str) -> list[tuple[int, int]]:
    """Character spans of the name whose match key is ``key`` in ``text`` (possessive "'s"
    and accents folded as :func:`kg.text.match_key` does)."""
    toks = [(m.start(), m.end(), match_key(m.group())) for m in _TOKEN.finditer(text)]
    toks = [
        t
        for t in toks
        if t[2] and not (t[2] == "s" and t[0] > 0 and text[t[0] - 1] in "'’")  # possessive
    ]
    want = key.split()
    n = len(want)
    return [
        (toks[i][0], toks[i + n - 1][1])
        for i in range(len(toks) - n + 1)
        if [t[2] for t in toks[i : i + n]] == want
    ]


def _before(text: str, start: int) -> str:
    window = text[max(0, start - _WINDOW) : start]
    cut = [m.end() for m in _SENTENCE.finditer(window)]
    return window[cut[-1] :] if cut else window


def _after(text: str, end: int) -> str:
    window = text[end : end + _WINDOW]
    m = _SENTENCE.search(window)
    return window[: m.start() + 1] if m else window


def _distance(pattern: re.Pattern[str], window: str, before: bool) -> int | None:
    """Characters between the name and the nearest match of ``pattern`` in ``window``."""
    m = pattern.search(window)
    if m is None:
        return None
    if before:  # anchored at the window's end: the distance is where the cue word starts
        return len(window) - m.start()
    return m.end()


def director_cue(text: str, key: str) -> bool:
    """Whether some mention of the name (match key ``key``) in ``text`` has a director cue
    nearer than any other-role cue (see the module doc)."""
    for start, end in name_spans(text, key):
        before, after = _before(text, start), _after(text, end)
        pos = [
            d
            for d in (
                _distance(_DIRECTOR_BEFORE, before, True),
                _distance(_DIRECTOR_AFTER, after, False),
            )
            if d is not None
        ]
        neg = [
            d
            for d in (
                _distance(_OTHER_BEFORE, before, True),
                _distance(_OTHER_AFTER, after, False),
            )
            if d is not None
        ]
        if pos and (not neg or min(pos) < min(neg)):
            return True
        if not pos and not neg and _POSSESSIVE_AFTER.match(after):
            return True
    return False


def _name_at(text: str, start: int, max_words: int) -> str | None:
    """The proper name (2..max_words capitalised words, initials and particles allowed)
    starting at ``start``, or None."""
    words: list[str] = []
    for m in re.finditer(r"\S+", text[start : start + 80]):
        word = m.group()
        bare = word.rstrip(",.;:!?)\"”")
        bare = re.sub(r"['’]s$", "", bare)
        capital = bool(bare) and bare[0].isupper() and not bare.isupper()
        initial = bool(re.fullmatch(r"(?:[A-Z]\.){1,3}", bare))
        if not (capital or initial or (words and bare in _NAME_PARTICLES)):
            break
        if re.split(r"[-\s]", bare.casefold())[0] in _NOT_NAME_WORDS:
            return None
        words.append(bare)
        if len(words) == max_words or bare != word:  # punctuation ends the name
            break
    while words and words[-1] in _NAME_PARTICLES:
        words.pop()
    return " ".join(words) if len(words) >= 2 else None


def cued_directors(text: str, max_words: int = 3) -> list[str]:
    """Proper names right after a strong director cue ("directed by X Y", "director X Y"),
    whether or not any item credits them."""
    out: list[str] = []
    for m in re.finditer(r"\s+", text):
        if not _STRONG_BEFORE.search(text[max(0, m.end() - 40) : m.end()]):
            continue
        name = _name_at(text, m.end(), max_words)
        if not name:
            continue
        names = [name]
        # "co-directed by Robert Fiore and George Butler": the cue covers both names
        rest = re.match(r"\s+and\s+", text[m.end() + len(name) :])
        if rest:
            second = _name_at(text, m.end() + len(name) + rest.end(), max_words)
            names += [second] if second else []
        out += [n for n in names if n not in out]
    return out
