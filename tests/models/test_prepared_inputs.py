"""The preparation seam: models read and encode nothing in their constructors; inputs are
prepared once (``Recommender.prepare``) and shared through an ``InputCache``."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from graphrec.config import model_config_from_dict
from graphrec.data.dataset import KnowledgeGraph
from graphrec.data.synthetic import random_interactions
from graphrec.knowledge import CollaborativeKG
from graphrec.models import InputCache, build_model, prepare_inputs
from graphrec.models.kgbase import KGRecommender


@pytest.fixture
def kg_folder_data(tmp_path):
    """random_interactions with a triples table on disk (one genre per item)."""
    data = random_interactions()
    rows = [(f"i{item}", "genre", f"g{item % 4}") for item in range(data.n_items)]
    path = tmp_path / "triples.tsv"
    pd.DataFrame(rows, columns=["head", "relation", "tail"]).to_csv(path, sep="\t", index=False)
    return data, path


def kg_config(name, path, **values):
    extra = {"relation_dim": 6, "kg_batch_size": 16} if name == "kgat" else {}
    return model_config_from_dict(
        {"name": name, "embedding_dim": 8, "kg": str(path), **extra, **values}
    )


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", ["kglightgcn", "kgat"])
def test_a_kg_model_is_built_on_a_prepared_graph_without_reading_the_file(name, kg_folder_data):
    data, path = kg_folder_data
    config = kg_config(name, path)
    torch.manual_seed(0)
    direct = build_model(config, data.n_users, data.n_items, data.train, data=data)
    ckg = prepare_inputs(config, data.train, data)
    assert isinstance(ckg, CollaborativeKG) and ckg.n_triples == data.n_items
    path.unlink()  # the constructor must not need the file any more
    torch.manual_seed(0)
    prepared = build_model(config, data.n_users, data.n_items, data.train, prepared=ckg)
    assert prepared.ckg is ckg
    direct_state, prepared_state = state(direct), state(prepared)
    assert direct_state.keys() == prepared_state.keys()
    for key, value in direct_state.items():
        torch.testing.assert_close(prepared_state[key], value)


def test_kg_models_with_equal_kg_settings_share_one_graph(kg_folder_data):
    data, path = kg_folder_data
    cache = InputCache()
    first = build_model(
        kg_config("kglightgcn", path),
        data.n_users,
        data.n_items,
        data.train,
        data=data,
        cache=cache,
    )
    second = build_model(
        kg_config("kgat", path), data.n_users, data.n_items, data.train, data=data, cache=cache
    )
    assert first.ckg is second.ckg and cache.prepared == 1
    pruned = build_model(
        kg_config("kgat", path, kg_relations=["genre"]),
        data.n_users,
        data.n_items,
        data.train,
        data=data,
        cache=cache,
    )
    assert pruned.ckg is not first.ckg and cache.prepared == 2
    other_data = random_interactions()  # another dataset: prepared again, never mixed up
    other = build_model(
        kg_config("kgat", path),
        other_data.n_users,
        other_data.n_items,
        other_data.train,
        data=other_data,
        cache=cache,
    )
    assert other.ckg is not first.ckg and cache.prepared == 3


def test_preparing_inputs_never_moves_the_initial_weights(kg_folder_data):
    data, path = kg_folder_data
    config = kg_config("kglightgcn", path)

    def drawing_prepare(cls, config, train, data, cache):
        torch.rand(1000)  # e.g. an encoder that initialises layers while loading
        return original(config, train, data, cache)

    original = KGRecommender.prepare
    torch.manual_seed(0)
    plain = state(build_model(config, data.n_users, data.n_items, data.train, data=data))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(KGRecommender, "prepare", classmethod(drawing_prepare))
        torch.manual_seed(0)
        drawn = state(build_model(config, data.n_users, data.n_items, data.train, data=data))
    for key, value in plain.items():
        torch.testing.assert_close(drawn[key], value)


def test_a_graph_of_other_sizes_is_refused(kg_folder_data):
    data, path = kg_folder_data
    config = kg_config("kglightgcn", path)
    ckg = prepare_inputs(config, data.train, data)
    with pytest.raises(ValueError, match="collaborative KG has"):
        build_model(config, data.n_users + 1, data.n_items, _padded(data.train), prepared=ckg)


def _padded(train):
    return sp.vstack([train, sp.csr_matrix((1, train.shape[1]))]).tocsr()


def test_models_without_inputs_prepare_nothing():
    data = random_interactions()
    config = model_config_from_dict({"name": "lightgcn", "embedding_dim": 8})
    cache = InputCache()
    assert prepare_inputs(config, data.train, data, cache) is None
    model = build_model(config, data.n_users, data.n_items, data.train, cache=cache)
    assert model.name == "lightgcn" and cache.prepared == 0 and len(cache) == 0


def test_unhashable_settings_are_prepared_every_time():
    data = random_interactions()
    cache = InputCache()
    calls = []

    def make():
        calls.append(1)
        return np.zeros(1)

    for _ in range(2):
        cache.shared(("kind", ["a", "list"]), data.train, data, make)
        cache.shared(("kind", "hashable"), data.train, data, make)
    assert len(calls) == 3 and len(cache) == 1


def test_dataset_kg_is_prepared_from_the_dataset():
    data = random_interactions()
    data.kg = KnowledgeGraph(
        triples=pd.DataFrame(
            [("i0", "genre", "g0"), ("i1", "genre", "g0")], columns=["head", "relation", "tail"]
        )
    )
    config = model_config_from_dict({"name": "kglightgcn", "embedding_dim": 8, "kg": "dataset"})
    ckg = prepare_inputs(config, data.train, data)
    assert ckg.n_triples == 2 and ckg.n_entities == data.n_items + 1
