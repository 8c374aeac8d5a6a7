"""The structured decoder's list constraint (no model needed)."""

from __future__ import annotations

from kg.llm.backends.structured import ListConstraint


def test_extractive_values_must_be_spans_of_the_text():
    c = ListConstraint("A sailor named Tom Reed drifts to Lisbon.", None, max_values=3, used=set())
    assert c.valid('"Tom Reed", "Lisbon"]')
    assert c.valid('"Lis')  # an unfinished value that can still become a span
    assert not c.valid('"Paris"')
    assert not c.valid('"Tom Reed", "Lisbon", "sailor", "drifts"')  # more than max_values


def test_open_lists_never_repeat_values_given_under_earlier_keys():
    c = ListConstraint(
        "A sailor named Tom Reed drifts to Lisbon.", None, max_values=3, used={"lisbon"}
    )
    assert not c.valid('"Lisbon"')
    assert c.valid('"sailor"')


def test_closed_vocabulary_ignores_earlier_keys():
    # "comedy" given as a keyword is still the genre Comedy
    c = ListConstraint(
        "A dark comedy.", ["Comedy", "comedy", "Drama"], max_values=3, used={"comedy"}
    )
    assert c.valid('"comedy"]')
    assert not c.valid('"Drama"')  # a choice, but not in the text


def test_closed_vocabulary_unfinished_values_stay_on_token_boundaries():
    # tokens: Document|ary and D|rama: '"D' is a boundary of "Drama" only, and "Drama"
    # is not in the text, so '"D' must be refused rather than strand the value
    c = ListConstraint(
        "A documentary about fashion week.",
        ["Documentary", "documentary", "Drama"],
        3,
        set(),
        boundaries={"document", "documentary"},
    )
    assert c.valid('"Document')
    assert c.valid('"documentary"]')
    assert not c.valid('"D')
    assert not c.valid('"Doc')
    assert c.possible()
    assert not ListConstraint("A western.", ["Drama"], 3, set()).possible()


# -- the rules both drivers share, and the generate() adapters (a fake tokenizer, no model) --


class _PieceTokenizer:
    """One token per piece: enough of a tokenizer for the generate() adapters."""

    eos_token_id = None

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return "".join(self.pieces[int(i)] for i in ids)

    def get_vocab(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.pieces)}

    def convert_tokens_to_ids(self, token: str) -> int:
        return self.pieces.index(token)


def test_a_list_is_over_when_closed_full_long_looping_or_stuck():
    from kg.llm.backends.structured import list_over

    assert not list_over('"Tom Reed", "Lis', 3)
    assert list_over('"Tom Reed"]', 3)  # closed
    assert list_over('"a1", "b1", "c1", "d1"', 3)  # more than max_values
    assert list_over('"' + "x" * 81, 3)  # a value that never ends
    assert list_over('"Tom", "Tom", "Tom"', 5)  # looping
    assert list_over('"Tom"', 5, stuck=True)


def test_replies_and_generated_values_render_canonically():
    from kg.llm.backends.structured import keep_generated, render_list, render_reply

    assert render_reply(["genre", "keyword"], {"keyword": ["Émile", 'a "b"']}) == (
        '{"genre": [], "keyword": ["Émile", "a \\"b\\""]}'
    )
    assert render_list(["Lisbon", "Tom"]) == '"Lisbon", "Tom"'
    used = {"lisbon"}
    source = "A sailor named Tom Reed drifts to Lisbon."
    assert keep_generated('"tom reed", "LISBON"]', 5, source, used) == ["Tom Reed"]
    assert used == {"lisbon", "tom reed"}


def test_span_processor_takes_the_best_valid_token_and_forces_a_close_when_stuck():
    import torch

    from kg.llm.backends.structured import ListStop, SpanProcessor, TokenPieces

    tok = _PieceTokenizer(['"', "Paris", "Lisbon", "]", '", "', "Tom"])
    rules = ListConstraint("A sailor named Tom drifts to Lisbon.", None, max_values=3, used=set())
    span = SpanProcessor(tok, 0, rules, TokenPieces(tok), top_k=6)
    stop = ListStop(tok, 0, 3, span)
    scores = torch.tensor([[0.0, 5.0, 4.0, 1.0, 0.0, 0.0]])  # "Paris" ranks first
    masked = span(torch.tensor([[0]]), scores)  # after '"'
    assert int(masked.argmax()) == 2 and torch.isinf(masked).sum() == 5  # "Lisbon": a span
    assert not stop(torch.tensor([[0, 2]]), scores).item()
    span.top_k = 2  # the model's two best after '"': "Paris" (no span) and '", "' (empty value)
    masked = span(torch.tensor([[0]]), torch.tensor([[0.0, 5.0, 0.0, 0.0, 4.0, 0.0]]))
    assert span.stuck and int(masked.argmax()) == 3  # nothing fits: "]" forced
    assert stop(torch.tensor([[0]]), scores).item()  # stuck alone ends the list


def test_json_stop_ends_rows_that_closed_loop_or_write_prose():
    import torch

    from kg.llm.backends.structured import JsonStop

    tok = _PieceTokenizer(["{", "}", '"a": 1', " prose" * 10, '"x", '])
    stop = JsonStop(tok, prompt_len=1, stop_on_repetition=True)
    rows = torch.tensor([[0, 0, 2, 1], [0, 0, 2, 2], [0, 3, 3, 3], [0, 4, 4, 4]])
    assert stop(rows, None).tolist() == [True, False, True, True]
