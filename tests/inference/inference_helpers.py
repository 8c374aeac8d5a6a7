"""Shared builders of the inference tests (a module of its own: `conftest` names clash across test folders)."""

import numpy as np
import pandas as pd
import scipy.sparse as sp

from graphrec.config import load_config
from graphrec.data.dataset import InteractionData, KnowledgeGraph
from graphrec.training import run_training


def train_tiny(out_dir, name, data, **model):
    """A finished run of model ``name`` on ``data`` (1 epoch), as ``run_training`` writes it."""
    sizes = {"model.embedding_dim": 8} if name not in ("ease", "itemknn", "popularity") else {}
    overrides = [
        f"model.name={name}",
        "train.epochs=1",
        "train.progress=false",
        "train.num_threads=1",
        "eval.ks=[5]",
        "train.select_metric=recall@5",
        f"out_dir={out_dir}",
        f"name={name}",
    ]
    overrides += [f"{k}={v}" for k, v in sizes.items()] + [
        f"model.{k}={v}" for k, v in model.items()
    ]
    config = load_config(None, overrides)
    run_training(config, data)
    return config.run_dir


def two_clusters() -> InteractionData:
    """Users 0-19 like items a, b; users 20-39 like c, d; user x liked a and c, item e is rare.

    Recommending b to x is explained by a, recommending d by c: the right answer is known.
    """
    users, items = [], []
    for u in range(40):
        for i in (0, 1) if u < 20 else (2, 3):
            users.append(u), items.append(i)
    users += [40, 40, 5]
    items += [0, 2, 4]
    train = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(41, 5))
    user_ids = np.array([f"u{i}" for i in range(40)] + ["x"], dtype=object)
    item_ids = np.array(["a", "b", "c", "d", "e"], dtype=object)
    info = pd.DataFrame({"title": ["Alien", "Blade Runner", "Cars", "Dumbo", "Eraserhead"]})
    # a KG: Alien and Blade Runner share their director; Cars and Dumbo a genre
    kg = KnowledgeGraph(
        triples=pd.DataFrame(
            {
                "head": ["a", "b", "c", "d"],
                "relation": ["directed_by", "directed_by", "genre", "genre"],
                "tail": ["Person/scott", "Person/scott", "Genre/animation", "Genre/animation"],
            }
        )
    )
    return InteractionData(
        name="clusters",
        user_ids=user_ids,
        item_ids=item_ids,
        train=train,
        test=sp.csr_matrix((41, 5), dtype=np.float32),
        item_info=info,
        kg=kg,
    )


def kg_folder(tmp_path):
    """A kg export (kg_table, triples with evidence, entities): items a, b directed by Ridley Scott, c, d animation."""
    folder = tmp_path / "kg"
    folder.mkdir()
    (folder / "kg_table.tsv").write_text(
        "head\trelation\ttail\na\tdirected_by\tPerson/scott\nb\tdirected_by\tPerson/scott\nc\tgenre\tGenre/animation\n"
        "d\tgenre\tGenre/animation\n"
    )
    (folder / "triples.tsv").write_text(
        "item_id\trelation\ttail\ttail_type\tentity\tsource\tsurface\n"
        "b\tdirected_by\tRidley Scott\tPerson\tPerson/scott\ttext\tdirected by Ridley Scott\n"
    )
    (folder / "entities.tsv").write_text(
        "entity\ttype\tlabel\taliases\tmentions\nPerson/scott\tPerson\tRidley Scott\t\t1\n"
    )
    return folder / "kg_table.tsv"
