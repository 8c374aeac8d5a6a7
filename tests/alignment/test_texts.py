"""Item texts, user profiles, and the leakage guard: profiles never see validation or test interactions."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from alignment.texts import (
    catalogue_text,
    item_texts,
    item_titles,
    llm_profiles,
    mean_profiles,
    profile_prompts,
    serialise_facts,
    validate_profile,
)
from alignment.views import TextViews, build_text_views
from graphrec.errors import DataFormatError
from kg.llm.backends.base import Completion, LLMBackend
from kg.llm.cache import ResponseCache


class RecordingBackend(LLMBackend):
    """A test double of a kg backend: records every conversation, replies with a fixed profile."""

    name = "recording"
    model = "fake"
    max_batch = 4

    def __init__(self, reply="The user likes space adventures and dislikes romance."):
        self.reply = reply
        self.calls = []

    def complete(self, messages, *, max_tokens, json_mode=True, **options):
        self.calls.append(messages)
        return Completion(text=self.reply, completion_tokens=12)


def test_catalogue_text_and_facts():
    row = {
        "title": "Alien",
        "year": "1979",
        "genres": "Horror|Sci-Fi",
        "tagline": "In space no one can hear you scream.",
        "overview": "A crew meets a creature.",
    }
    assert (
        catalogue_text(row)
        == "Alien (1979). Genres: Horror, Sci-Fi. In space no one can hear you scream. A crew meets a creature."
    )
    facts = pd.DataFrame(
        {
            "head": ["7", "7", "7", "8"],
            "relation": ["directed_by", "starring", "starring", "genre"],
            "tail": ["Ridley Scott", "Sigourney Weaver", "Tom Skerritt", "Drama"],
        }
    )
    assert serialise_facts(facts) == {
        "7": "Directed by: Ridley Scott. Starring: Sigourney Weaver, Tom Skerritt.",
        "8": "Genre: Drama.",
    }
    assert (
        serialise_facts(facts, max_per_relation=1)["7"]
        == "Directed by: Ridley Scott. Starring: Sigourney Weaver."
    )


def test_item_texts_with_kg_facts(topics):
    facts = pd.DataFrame({"head": ["i0"], "relation": ["keyword"], "tail": ["starship"]})
    plain, with_kg = item_texts(topics), item_texts(topics, facts)
    assert with_kg[0] == plain[0] + " Keywords: starship." and with_kg[1:] == plain[1:]


def test_mean_profiles_hand_checked():
    train = sp.csr_matrix(np.array([[1, 0, 3], [0, 0, 0]], dtype=np.float32))
    items = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    raw = mean_profiles(train, items, normalize=False)
    np.testing.assert_allclose(
        raw, [[0.25, 0.75], [0.0, 0.0]]
    )  # rating-weighted mean; empty user -> 0
    unit = mean_profiles(train, items)
    np.testing.assert_allclose(unit[0], np.array([0.25, 0.75]) / np.hypot(0.25, 0.75), rtol=1e-6)


def _shuffled_held_out(data, seed=1):
    """The same training matrix with different validation/test interactions and changed titles of held-out items."""
    rng = np.random.default_rng(seed)
    valid = sp.csr_matrix(
        sp.random(data.n_users, data.n_items, density=0.01, random_state=seed, dtype=np.float32)
    )
    test = sp.csr_matrix(
        sp.random(data.n_users, data.n_items, density=0.01, random_state=seed + 1, dtype=np.float32)
    )
    valid.data[:] = 1
    test.data[:] = 1
    info = data.item_info.copy()
    held_out_only = np.flatnonzero(np.asarray(data.train.sum(axis=0)).ravel() == 0)
    info.loc[held_out_only, "title"] = [f"LEAK {rng.integers(1e9)}" for _ in held_out_only]
    return dataclasses.replace(data, valid=valid, test=test, item_info=info), held_out_only


def test_leakage_guard_profiles_ignore_valid_and_test(topics, encoder, session_cache):
    changed, _ = _shuffled_held_out(topics)
    a = build_text_views(topics, encoder=encoder, cache=session_cache)
    b = build_text_views(changed, encoder=encoder, cache=session_cache)
    np.testing.assert_array_equal(a.user, b.user)


def test_leakage_guard_llm_prompts_show_training_items_only(topics):
    titles = item_titles(topics)
    prompts = profile_prompts(topics.train, titles)
    for prompt in prompts:
        train_items = set(topics.train[prompt.user].indices.tolist())
        assert set(prompt.liked) <= train_items
        text = prompt.messages[-1]["content"]
        for split in (topics.valid, topics.test):
            for item in split[prompt.user].indices.tolist():
                if item not in train_items:
                    assert f"{titles[item]};" not in text and f"{titles[item]}." not in text
    # the held-out interactions and the held-out items' titles do not change any prompt
    changed, held_out_only = _shuffled_held_out(topics)
    assert len(held_out_only) > 0
    again = profile_prompts(changed.train, item_titles(changed))
    assert [p.messages for p in again] == [p.messages for p in prompts]
    assert not any("LEAK" in p.messages[-1]["content"] for p in again)


def test_llm_profiles_are_cached_and_validated(topics, tmp_path):
    small = dataclasses.replace(
        topics,
        train=topics.train[:6],
        valid=topics.valid[:6],
        test=topics.test[:6],
        user_ids=topics.user_ids[:6],
    )
    titles = item_titles(small)
    backend = RecordingBackend()
    cache = ResponseCache(tmp_path / "llm.sqlite")
    profiles, report = llm_profiles(small.train, titles, backend, cache, progress=False)
    assert profiles == [backend.reply] * 6 and report.generated == 6 and len(backend.calls) == 6
    backend.calls.clear()
    again, report = llm_profiles(small.train, titles, backend, cache, progress=False)
    assert again == profiles and report.cached == 6 and backend.calls == []  # all from the cache

    broken = RecordingBackend(reply="{}")
    fallback, report = llm_profiles(
        small.train, titles, broken, ResponseCache(tmp_path / "other.sqlite"), progress=False
    )
    assert report.invalid == list(range(6))
    first_liked = titles[int(small.train[0].indices[0])]
    assert fallback[0].startswith("Likes ") and first_liked in fallback[0]


def test_validate_profile():
    assert validate_profile("  The user   likes\nspace operas. ") == "The user likes space operas."
    assert validate_profile("{}") is None and validate_profile("") is None


def test_llm_views_end_to_end(topics, encoder, session_cache, tmp_path):
    views = build_text_views(
        topics,
        encoder=encoder,
        cache=session_cache,
        user_profile="llm",
        llm_backend=RecordingBackend(),
        llm_cache=ResponseCache(tmp_path / "llm.sqlite"),
    )
    assert (
        views.user.shape == (topics.n_users, 384)
        and views.meta["llm"]["generated"] == topics.n_users
    )
    np.testing.assert_allclose(views.user[0], views.user[1])  # same reply -> same embedding


def test_text_views_round_trip_and_realignment(topic_views, topics, tmp_path):
    topic_views.save(tmp_path / "views.npz")
    loaded = TextViews.load(tmp_path / "views.npz", topics)
    np.testing.assert_array_equal(loaded.user, topic_views.user)
    np.testing.assert_array_equal(loaded.item, topic_views.item)
    reordered = dataclasses.replace(
        topics, item_ids=topics.item_ids[::-1].copy(), item_info=topics.item_info[::-1]
    )
    flipped = TextViews.load(tmp_path / "views.npz", reordered)
    np.testing.assert_array_equal(flipped.item, topic_views.item[::-1])
    missing = dataclasses.replace(
        topics, user_ids=np.array([f"x{i}" for i in range(topics.n_users)], dtype=object)
    )
    with pytest.raises(DataFormatError, match="has no user 'x0'"):
        TextViews.load(tmp_path / "views.npz", missing)
