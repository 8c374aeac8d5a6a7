"""End-to-end builds with the fake backend: counts, chunking, cache, failures, modes."""

from __future__ import annotations

import csv
import json

import pytest
from fakes import FakeBackend, fake_reply
from helpers import write_items

from kg.build import OutputConfig, finalize, run_build
from kg.data import read_items
from kg.errors import BackendUnavailable, DataFormatError, JournalError
from kg.llm.cache import ResponseCache
from kg.llm.journal import read_journal
from kg.pipeline import ExtractConfig
from kg.resolve import ResolveConfig

NO_EMB = ResolveConfig(use_embeddings=False)


def build(items, schema, backend, out, **kw):
    return run_build(
        items,
        schema,
        backend,
        out,
        kw.pop("extract", None),
        NO_EMB,
        kw.pop("output", None),
        quiet=True,
        **kw,
    )


def triples_tsv(out):
    with open(out / "triples.tsv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_build_counts_and_outputs(tmp_path, films_schema):
    items = read_items(write_items(tmp_path / "items.tsv"))
    backend = FakeBackend()
    stats = build(items, films_schema, backend, tmp_path / "run")
    assert stats.items_skipped_empty == 1 and stats.items_done == 5
    assert stats.calls == 5 and stats.cache_hits == 0
    # every reply proposes the hallucinated "Atlantis" and an unknown relation: both rejected
    assert (
        stats.rejections["unsupported_by_text"] == 5 and stats.rejections["unknown_relation"] == 5
    )
    rows = triples_tsv(tmp_path / "run")
    assert {r["tail"] for r in rows} >= {
        "Buzz Lightyear",
        "Comedy",
        "friendship",
        "heist",
        "revenge",
    }
    assert not any(r["tail"] == "Atlantis" for r in rows)
    out = tmp_path / "run"
    for name in (
        "kg.nq.gz",
        "kg.ttl",
        "entities.tsv",
        "stats.json",
        "graphrec/kg_arrays.npz",
        "graphrec/run.kg",
        "graphrec/run.link",
    ):
        assert (out / name).exists(), name
    stats_json = json.loads((out / "stats.json").read_text())
    assert stats_json["journals"]["text"]["items_done"] == 5
    assert stats_json["journals"]["text"]["items_skipped"] == 1
    assert stats_json["graph"]["nodes_per_type"]["Keyword"] >= 4


def test_tokens_and_cost_are_counted(tmp_path, films_schema):
    from kg.pipeline import Prices

    items = read_items(write_items(tmp_path / "items.tsv"))
    stats = build(items, films_schema, FakeBackend(), tmp_path / "run", prices=Prices(1.0, 2.0))
    assert stats.prompt_tokens > 0 and stats.completion_tokens > 0
    assert stats.cost == pytest.approx(
        stats.prompt_tokens / 1000 + 2 * stats.completion_tokens / 1000
    )
    saved = json.loads(next((tmp_path / "run" / "runs").glob("*.json")).read_text())
    assert saved["cost"] == pytest.approx(stats.cost) and saved["items_per_s"] > 0


def test_cache_hits_and_unparseable_replies_are_not_cached(tmp_path, films_schema):
    items = read_items(write_items(tmp_path / "items.tsv"))

    def replies(messages):
        return "I am not JSON" if "casino" in messages[-1]["content"] else fake_reply(messages)

    cache_file = tmp_path / "shared-cache.sqlite"
    first = build(items, films_schema, FakeBackend(replies), tmp_path / "a", cache_path=cache_file)
    assert first.outputs_unparsed == 1 and first.rejections["output_no_json"] == 1
    assert len(ResponseCache(cache_file)) == 4
    second_backend = FakeBackend(replies)
    second = build(items, films_schema, second_backend, tmp_path / "b", cache_path=cache_file)
    assert second.cache_hits == 4 and second.calls == 1  # only the junk reply is asked again
    assert triples_tsv(tmp_path / "a") == triples_tsv(tmp_path / "b")


def test_long_text_is_chunked_and_non_utf8_is_read(tmp_path, films_schema, caplog):
    long_text = ("Marty McFly meets Emmett Brown in Hill Valley and they talk about love. " * 1500)[
        :100_000
    ]
    path = write_items(
        tmp_path / "items.tsv",
        {"7": ("Long", "1985", long_text)},
        raw_lines=[b"8\tBad bytes\t1990\tDrama\tA caf\xe9 story of revenge in Lisbon.\t"],
    )
    items = read_items(path)
    assert "\ufffd" in items[1].text and "bad bytes" not in caplog.text.lower() or True
    backend = FakeBackend()
    stats = build(
        items, films_schema, backend, tmp_path / "run", extract=ExtractConfig(chunk_chars=2000)
    )
    assert stats.calls > 50  # 100 KB in 2,000-character chunks
    assert all(len(m[-1]["content"]) < 2100 for m in backend.calls)
    rows = triples_tsv(tmp_path / "run")
    assert {("7", "Emmett Brown"), ("8", "revenge")} <= {(r["item_id"], r["tail"]) for r in rows}
    assert (
        sum(1 for r in rows if r["item_id"] == "7" and r["tail"] == "Emmett Brown") == 1
    )  # deduplicated


def test_bad_items_file_names_file_line_and_field(tmp_path):
    path = tmp_path / "items.tsv"
    path.write_text("item_id\ttitle\toverview\n1\tA\ttext\n1\tB\tother\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"items.tsv:3: field 'item_id': duplicate"):
        read_items(path, text_columns=("overview",))
    path.write_text("item_id\ttitle\n1\tA\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"items.tsv:1: field 'overview': missing column"):
        read_items(path, text_columns=("overview",))
    path.write_text("item_id\ttitle\toverview\n1\tA\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"items.tsv:2: expected 3"):
        read_items(path, text_columns=("overview",))


def test_failed_calls_are_journaled_and_retried(tmp_path, films_schema):
    items = read_items(write_items(tmp_path / "items.tsv"))
    backend = FakeBackend()
    backend.fail_on = {"Neil McCauley"}
    first = build(items, films_schema, backend, tmp_path / "run")
    assert first.items_failed == 1 and first.items_done == 4
    backend.fail_on = set()
    second = build(items, films_schema, backend, tmp_path / "run")
    assert second.items_done == 1 and second.items_already_done == 5 and second.calls == 1
    _, records = read_journal(tmp_path / "run" / "journal.text.jsonl")
    assert sorted(r["item_id"] for r in records) == ["1", "2", "3", "4", "5", "6"]


def test_server_down_mid_build_stops_cleanly_and_resumes(tmp_path, films_schema, chat_server):
    from kg.llm.backends.openai import OpenAIBackend, OpenAIConfig

    items = read_items(write_items(tmp_path / "items.tsv"))
    cfg = OpenAIConfig(
        base_url=chat_server.base_url,
        model="m",
        concurrency=1,
        max_retries=2,
        backoff_base_s=0.01,
        backoff_max_s=0.02,
    )
    chat_server.plan = ["ok", "ok"]
    original = chat_server.responder

    def flaky(messages):
        if len(chat_server.requests) > 2:
            chat_server.down = True
        return original(messages)

    chat_server.responder = flaky
    with pytest.raises(BackendUnavailable):
        build(items, films_schema, OpenAIBackend(cfg), tmp_path / "run")
    _, records = read_journal(tmp_path / "run" / "journal.text.jsonl")
    done_before = {r["item_id"] for r in records if r["status"] == "done"}
    assert 1 <= len(done_before) < 5
    assert list((tmp_path / "run" / "runs").glob("*.json"))  # counters of the stopped run were kept
    chat_server.down = False
    chat_server.responder = original
    stats = build(items, films_schema, OpenAIBackend(cfg), tmp_path / "run")
    assert stats.items_already_done == len(done_before) + 1  # + the skipped empty item
    _, records = read_journal(tmp_path / "run" / "journal.text.jsonl")
    assert sorted(r["item_id"] for r in records) == ["1", "2", "3", "4", "5", "6"]


def test_resuming_with_other_settings_is_refused(tmp_path, films_schema):
    items = read_items(write_items(tmp_path / "items.tsv"))
    build(items, films_schema, FakeBackend(), tmp_path / "run")
    with pytest.raises(JournalError, match="max_new_tokens"):
        build(
            items,
            films_schema,
            FakeBackend(),
            tmp_path / "run",
            extract=ExtractConfig(max_new_tokens=50),
        )


def test_gleaning_adds_missed_facts(tmp_path, films_schema):
    items = read_items(
        write_items(
            tmp_path / "items.tsv",
            {"1": ("Toy Story", "1995", "Woody and Buzz Lightyear fight over Andy in Ohio.")},
        )
    )

    def replies(messages):
        if "additional facts" in messages[-1]["content"]:
            return '{"set_in": ["Ohio"]}'
        return '{"features_character": ["Woody"]}'

    backend = FakeBackend(replies)
    stats = build(
        items, films_schema, backend, tmp_path / "run", extract=ExtractConfig(gleaning=True)
    )
    assert stats.calls == 2
    assert {r["tail"] for r in triples_tsv(tmp_path / "run")} == {"Woody", "Ohio"}
    assert backend.calls[1][-2]["role"] == "assistant"  # the first answer is shown to the model


def test_knowledge_mode_is_kept_apart(tmp_path, films_schema):
    items = read_items(write_items(tmp_path / "items.tsv"))

    def knows(messages):
        return '{"directed_by": ["John Lasseter"], "genre": ["Animation"], "set_in": ["Mars"]}'

    out = tmp_path / "run"
    build(items, films_schema, FakeBackend(), out)
    stats = build(
        items, films_schema, FakeBackend(knows), out, extract=ExtractConfig(mode="knowledge")
    )
    assert stats.items_done == 6  # the item without text still has a title
    assert stats.rejections["relation_not_allowed"] == 6
    rows = triples_tsv(out)
    know = [r for r in rows if r["source"] == "llm_knowledge"]
    assert {r["tail"] for r in know} == {"John Lasseter", "Animation"}
    assert all(
        r["source"] == "text" for r in rows if r["tail"] not in ("John Lasseter", "Animation")
    )
    kg_file = (out / "graphrec" / "run.kg").read_text()
    assert "John-Lasseter".lower() not in kg_file.lower()  # not exported to graphrec unless asked
    finalize(
        out,
        films_schema,
        items,
        output=OutputConfig(include_knowledge_in_export=True),
        resolve_cfg=NO_EMB,
    )
    assert "directed_by" in (out / "graphrec" / "run.kg").read_text()
