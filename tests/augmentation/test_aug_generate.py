"""Generation: prompts, validation, provenance, cache replay, resume after a kill, real backends' wiring."""

import json

import pytest
from augmentation_helpers import candidate_lines, comedy_fan
from chat_server import ChatServer
from fakes import FakeBackend

from graphrec.augmentation import load_edges, read_records
from graphrec.augmentation.generate import (
    GenerationSettings,
    generate_augmentation,
    sample_users,
    top_unseen,
)
from graphrec.augmentation.prompt import PROMPT_VERSION
from graphrec.data import data_fingerprint
from kg.errors import BackendUnavailable
from kg.llm.backends import OpenAIBackend, OpenAIConfig

SETTINGS = GenerationSettings(users=12, candidates=6, history=4, description_chars=40, seed=1)


def test_candidates_are_the_top_unseen_items(text_data, scorer):
    users = sample_users(text_data.n_users, 5, seed=0)
    tops = top_unseen(scorer, text_data.train, users, k=6)
    for user, top in zip(users, tops):
        scores = scorer(__import__("torch").tensor([user]))[0]
        seen = set(text_data.train[user].indices.tolist())
        ranked = [i for i in scores.argsort(descending=True).tolist() if i not in seen]
        assert top.tolist() == ranked[:6]
    assert len(set(sample_users(30, 0, 1).tolist())) == 30 and list(sample_users(30, 5, 1)) == list(
        sample_users(30, 5, 1)
    )


def test_generation_writes_valid_triplets_with_provenance(text_data, scorer, tmp_path):
    backend = FakeBackend(replies=comedy_fan)
    report = generate_augmentation(
        text_data,
        scorer,
        backend,
        tmp_path / "edges.jsonl",
        SETTINGS,
        progress=False,
        base_run={"path": "runs/x", "checkpoint_sha256": "abc"},
    )
    assert (
        report.users == 12
        and report.edges == 12
        and report.llm_calls == 12
        and len(backend.calls) == 12
    )
    header, records = read_records(tmp_path / "edges.jsonl")
    assert header["prompt_version"] == PROMPT_VERSION and header["backend"]["model"] == "fake-1"
    assert (
        header["data_fingerprint"] == data_fingerprint(text_data)
        and header["base_run"]["path"] == "runs/x"
    )
    assert header["counts"]["edges"] == 12 and header["settings"]["candidates"] == 6
    genres = text_data.item_info["genres"]
    for _, edge in records:
        assert {
            "user",
            "pos",
            "neg",
            "candidates",
            "backend",
            "prompt_version",
            "time",
            "cache_key",
            "response",
        } <= set(edge)
        assert (
            edge["pos"] in edge["candidates"]
            and edge["neg"] in edge["candidates"]
            and edge["pos"] != edge["neg"]
        )
        user = text_data.user_index([edge["user"]])[0]
        pos, neg = text_data.item_index([edge["pos"], edge["neg"]])
        assert text_data.train[user, pos] == 0 and text_data.train[user, neg] == 0
        candidates = text_data.item_index(edge["candidates"])
        if any(genres[c] == "Comedy" for c in candidates):  # the fake model's taste is honoured
            assert genres[pos] == "Comedy"
    edges = load_edges(tmp_path / "edges.jsonl", text_data)
    assert len(edges) == 12 and len(edges.sha256) == 64


def test_prompt_holds_training_history_and_defused_text(text_data, scorer, tmp_path):
    backend = FakeBackend(replies=comedy_fan)
    settings = GenerationSettings(users=3, candidates=6, history=4, description_chars=200, seed=1)
    generate_augmentation(
        text_data, scorer, backend, tmp_path / "e.jsonl", settings, progress=False
    )
    messages = backend.calls[0]
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    body = messages[-1]["content"]
    assert (
        body.count("<candidates>") == 1 and "(candidates)" in body
    )  # the overview's tag is defused
    assert len(candidate_lines(messages)) == 6
    history = body.split("<history>")[1].split("</history>")[0].strip().splitlines()
    assert len(history) == 4


def test_rejections_are_counted_by_reason(text_data, scorer, tmp_path):
    replies = iter(
        ['{"like": 1, "dislike": 1}', "no idea", '{"like": 99, "dislike": 2}', '{"like": 2}']
        + [""] * 2
    )

    def flaky(messages):
        return next(replies, '{"like": 1, "dislike": 2}')

    report = generate_augmentation(
        text_data,
        scorer,
        FakeBackend(replies=flaky),
        tmp_path / "e.jsonl",
        SETTINGS,
        progress=False,
    )
    assert report.rejected == {
        "empty": 2,
        "no_answer": 1,
        "missing_like": 0,
        "missing_dislike": 1,
        "not_a_candidate": 1,
        "same_item": 1,
    }
    assert report.edges == 12 - 6
    header, records = read_records(tmp_path / "e.jsonl")
    assert header["counts"]["rejected"]["empty"] == 2 and len(records) == 6


def test_cache_replay_makes_no_llm_call(text_data, scorer, tmp_path):
    cache = tmp_path / "cache.sqlite"
    first = generate_augmentation(
        text_data,
        scorer,
        FakeBackend(replies=comedy_fan),
        tmp_path / "a.jsonl",
        SETTINGS,
        cache=cache,
        progress=False,
    )
    again = FakeBackend(
        replies=lambda m: pytest.fail("the LLM must not be called on a cache replay")
    )
    second = generate_augmentation(
        text_data, scorer, again, tmp_path / "b.jsonl", SETTINGS, cache=cache, progress=False
    )
    assert (
        first.llm_calls == 12
        and second.llm_calls == 0
        and second.cache_hits == 12
        and again.calls == []
    )

    def strip(path):
        return [(e["user"], e["pos"], e["neg"], e["candidates"]) for _, e in read_records(path)[1]]

    assert strip(tmp_path / "a.jsonl") == strip(tmp_path / "b.jsonl")


def test_killed_run_resumes_without_losing_or_redoing_work(text_data, scorer, tmp_path):
    answered = []

    def dies_after_five(messages):
        if len(answered) == 5:
            raise BackendUnavailable("server went away")
        answered.append(messages)
        return comedy_fan(messages)

    out = tmp_path / "edges.jsonl"
    with pytest.raises(BackendUnavailable):
        generate_augmentation(
            text_data,
            scorer,
            FakeBackend(replies=dies_after_five, max_batch=1),
            out,
            SETTINGS,
            progress=False,
        )
    assert not out.exists()  # the edge file is written only when every user is answered
    healthy = FakeBackend(replies=comedy_fan)
    report = generate_augmentation(text_data, scorer, healthy, out, SETTINGS, progress=False)
    assert report.resumed_users == 5 and len(healthy.calls) == 7 and report.edges == 12
    users = [e["user"] for _, e in read_records(out)[1]]
    assert len(users) == len(set(users)) == 12
    reference = generate_augmentation(
        text_data,
        scorer,
        FakeBackend(replies=comedy_fan),
        tmp_path / "ref.jsonl",
        SETTINGS,
        progress=False,
    )
    strip = lambda path: [(e["user"], e["pos"], e["neg"]) for _, e in read_records(path)[1]]  # noqa: E731
    assert reference.edges == 12 and strip(out) == strip(tmp_path / "ref.jsonl")


def test_resuming_with_other_settings_is_refused(text_data, scorer, tmp_path):
    from kg.errors import JournalError

    out = tmp_path / "edges.jsonl"
    generate_augmentation(
        text_data, scorer, FakeBackend(replies=comedy_fan), out, SETTINGS, progress=False
    )
    other = GenerationSettings(users=12, candidates=5, history=4, seed=1)
    with pytest.raises(JournalError, match="different settings"):
        generate_augmentation(
            text_data, scorer, FakeBackend(replies=comedy_fan), out, other, progress=False
        )


def test_openai_compatible_server_end_to_end(text_data, scorer, tmp_path):
    with ChatServer(responder=comedy_fan) as server:
        server.plan = ["429", "ok", "500"]  # retried by the backend
        backend = OpenAIBackend(
            OpenAIConfig(
                base_url=server.base_url,
                model="local-test",
                concurrency=2,
                backoff_base_s=0.01,
                backoff_max_s=0.05,
            )
        )
        report = generate_augmentation(
            text_data, scorer, backend, tmp_path / "e.jsonl", SETTINGS, progress=False
        )
        backend.close()
    assert report.edges == 12 and report.failed == 0
    header, records = read_records(tmp_path / "e.jsonl")
    assert header["backend"]["backend"] == "openai" and header["backend"]["model"] == "local-test"
    sent = server.requests[-1]["body"]
    assert sent["model"] == "local-test" and sent["messages"][0]["role"] == "system"
    assert json.loads(records[0][1]["response"].split("! ", 1)[1])["like"] >= 1


def test_a_larger_sample_extends_a_finished_run(text_data, scorer, tmp_path):
    out = tmp_path / "edges.jsonl"
    small = GenerationSettings(users=6, candidates=6, history=4, description_chars=40, seed=1)
    generate_augmentation(
        text_data, scorer, FakeBackend(replies=comedy_fan), out, small, progress=False
    )
    backend = FakeBackend(replies=comedy_fan)
    report = generate_augmentation(text_data, scorer, backend, out, SETTINGS, progress=False)
    assert report.resumed_users == 6 and len(backend.calls) == 6 and report.edges == 12
    first_six = [e["user"] for _, e in read_records(out)[1]][:6]
    assert first_six == [str(text_data.user_ids[u]) for u in sample_users(text_data.n_users, 6, 1)]
