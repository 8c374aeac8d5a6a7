"""Registry: registered datasets with known statistics, paths, env var, saved splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_helpers import ML100K, needs_ml100k, synthetic, write

import graphrec.datasets as datasets
from graphrec.data import registry
from graphrec.errors import ConfigError, DataFormatError


@pytest.fixture(scope="module")
def book():
    return datasets.load("rlmrec-amazon-book")


@pytest.fixture(scope="module")
def movies():
    return datasets.load("ml-latest-small-tmdb")


def test_public_module():
    assert datasets.load is registry.load
    assert datasets.list_datasets() == [
        "amazon18-scientific",
        "ml-100k",
        "ml-latest-small-tmdb",
        "rlmrec-amazon-book",
        "rlmrec-yelp",
    ]
    info = datasets.dataset_info("ml-latest-small-tmdb")
    assert info["path"] and info["defaults"]["rating_threshold"] == 4.0


def test_rlmrec_as_shipped(book):
    stats = book.statistics()
    assert (stats["users"], stats["items"]) == (11_000, 9_332)
    assert (
        stats["train_interactions"],
        stats["valid_interactions"],
        stats["test_interactions"],
    ) == (120_464, 40_290, 40_106)
    # ids 0..n-1 sort numerically, so internal id == the paper's id
    assert book.user_ids[:3].tolist() == ["0", "1", "2"] and book.item_ids[-1] == "9331"
    assert (
        book.item_info["asin"].iloc[0] == "0373730489"
        and book.user_info["reviewer_id"].iloc[0] == "A2PDSDPBAO255U"
    )
    assert book.meta["split"]["method"] == "presplit"
    json.dumps(book.meta)  # provenance is stored with runs: it must stay JSON-able


def test_rlmrec_yelp_as_shipped():
    yelp = datasets.load("rlmrec-yelp")
    stats = yelp.statistics()
    assert (stats["users"], stats["items"]) == (11_091, 11_010)
    assert (
        stats["train_interactions"],
        stats["valid_interactions"],
        stats["test_interactions"],
    ) == (166_620, 55_479, 55_436)
    assert yelp.meta["split"]["method"] == "presplit" and yelp.item_info is None


def test_amazon18_scientific_leave_last_out_by_seq_idx():
    data = datasets.load("amazon18-scientific")
    stats = data.statistics()
    assert (stats["users"], stats["items"], stats["interactions"]) == (8_317, 4_344, 58_492)
    assert data.valid.nnz == data.test.nnz == data.n_users  # one valid and one test item per user
    folder = datasets.dataset_dir("amazon18-scientific")
    rows = [line.split("\t") for line in (folder / "interactions.tsv").read_text().splitlines()[1:]]
    history = sorted((int(seq), item) for user, item, _, _, seq in rows if user == "0")
    user = data.user_index(["0"])[0]
    assert data.item_ids[data.test[user].indices].tolist() == [history[-1][1]]
    assert data.item_ids[data.valid[user].indices].tolist() == [history[-2][1]]
    assert list(data.item_info.columns) == ["title", "description", "brand", "categories"]
    assert data.item_info["description"].ne("").sum() == 3_905
    assert set(data.kg.triples["relation"]) == {"brand", "category", "category_leaf"}
    assert data.meta["split"]["method"] == "leave_one_out"


def test_ml100k_by_name():
    data = datasets.load("ml-100k", split="temporal_user")
    assert data.statistics()["interactions"] == 100_000 and data.kg.num_triples == 91_631


def test_rlmrec_refuses_resplitting():
    with pytest.raises(ConfigError, match="fixed train/valid/test split.*k_core"):
        datasets.load("rlmrec-amazon-book", k_core=5)
    with pytest.raises(ConfigError, match="unknown option"):
        datasets.load("rlmrec-amazon-book", colour="red")


def test_ml_tmdb_defaults(movies):
    stats = movies.statistics()
    assert (stats["users"], stats["items"]) == (601, 1_955)
    assert (
        stats["train_interactions"],
        stats["valid_interactions"],
        stats["test_interactions"],
    ) == (33_479, 3_874, 3_874)
    report = movies.meta["preprocessing"]
    assert report["input_interactions"] == 100_836 and report["below_threshold_removed"] == 52_256
    assert movies.meta["split"]["method"] == "ratio" and movies.meta["split"]["seed"] == 2024
    assert list(movies.item_info.columns) == ["title", "year", "genres", "overview", "tagline"]
    toy = movies.item_index(["1"])[0]
    assert (
        movies.item_info.loc[toy, "title"] == "Toy Story"
        and movies.item_info.loc[toy, "year"] == "1995"
    )
    kg = movies.kg
    assert list(kg.triples.columns) == ["head", "relation", "tail"]
    assert set(kg.triples["head"]) <= set(movies.item_ids)
    assert ("1", "directed_by", "John Lasseter") in set(map(tuple, kg.triples.to_numpy().tolist()))
    assert (kg.item_entity["item_id"] == kg.item_entity["entity_id"]).all()
    json.dumps(movies.meta)
    extended = registry.dataset_statistics(movies)
    assert extended["items_with_overview"] == 1_883


def test_gold_facts_and_items():
    facts = datasets.load_gold_facts()
    assert len(facts) == 152_316 and list(facts.columns) == [
        "item_id",
        "relation",
        "value",
        "source",
    ]
    assert facts["relation"].value_counts()["keyword"] == 66_069
    items = datasets.load_items()
    assert len(items) == 9_742 and items["overview"].ne("").sum() == 7_579


def test_load_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = datasets.load(
        "ml-latest-small-tmdb", split="leave_one_out", k_core=10, with_kg=False, with_text=False
    )
    assert data.kg is None and data.item_info is None
    assert data.test.nnz == data.n_users  # one test item per user
    assert not any(tmp_path.iterdir())  # nothing cached implicitly


def tiny_movies(root):
    """A 3-file ml-latest-small-tmdb look-alike for env-var tests."""
    rows = synthetic(n_users=12, n_items=15, per_user=(4, 10), seed=9)
    lines = [f"{u[1:]}\t{i[1:]}\t{r}\t{int(t)}" for u, i, r, t in rows.itertuples(index=False)]
    folder = root / "ml-latest-small-tmdb"
    write(
        folder / "interactions.tsv",
        "user_id\titem_id\trating\ttimestamp\n" + "\n".join(lines) + "\n",
    )
    items = "".join(
        f"{i}\tMovie {i}\t2000\tDrama\t{'plot' if i % 2 else ''}\t\t\t\t\n" for i in range(15)
    )
    write(
        folder / "items.tsv",
        "item_id\ttitle\tyear\tgenres\toverview\ttagline\ttmdb_id\timdb_id\ttext_source\n" + items,
    )
    write(
        folder / "gold_facts.tsv",
        "item_id\trelation\tvalue\tsource\n1\tgenre\tDrama\tx\n999\tgenre\tNoir\tx\n",
    )
    return rows


def test_env_var_root(tmp_path, monkeypatch):
    rows = tiny_movies(tmp_path)
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path))
    data = datasets.load("ml-latest-small-tmdb", rating_threshold=False, k_core=0)
    assert data.statistics()["interactions"] == len(rows)
    assert data.kg.triples["head"].tolist() == [
        "1"
    ]  # facts of items outside the dataset are left out
    assert data.item_info["overview"].tolist()[:2] == ["", "plot"]
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "elsewhere"))
    with pytest.raises(DataFormatError, match="GRAPHREC_DATA_DIR"):
        datasets.load("rlmrec-amazon-book")


def test_split_dir_saves_then_reuses(tmp_path, monkeypatch):
    tiny_movies(tmp_path / "root")
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "root"))
    first = datasets.load("ml-latest-small-tmdb", k_core=2, seed=5, split_dir=tmp_path / "split")
    assert (tmp_path / "split" / "split.json").exists()
    again = datasets.load(
        "ml-latest-small-tmdb", split_dir=tmp_path / "split"
    )  # options come from the saved split
    assert (first.train != again.train).nnz == 0 and (first.test != again.test).nnz == 0
    assert again.meta["options"]["seed"] == 5 and again.meta["split_dir"] == str(tmp_path / "split")
    json.dumps(first.meta), json.dumps(again.meta)
    with pytest.raises(ConfigError, match="seed=5"):
        datasets.load("ml-latest-small-tmdb", seed=6, split_dir=tmp_path / "split")
    target = tmp_path / "split" / "ml-latest-small-tmdb.valid.inter"
    text = target.read_text()
    target.write_text(
        text[:-2] + ("8" if text[-2] != "8" else "9") + "\n"
    )  # same size, other content
    with pytest.raises(DataFormatError, match="sha256") as info:
        datasets.load("ml-latest-small-tmdb", split_dir=tmp_path / "split")
    assert info.value.path == str(target)


def test_lookup_order_shared_data_then_the_user_cache(tmp_path, monkeypatch):
    from kg.data import checkout_root

    monkeypatch.delenv(datasets.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    roots = datasets.data_roots()
    assert roots == [
        checkout_root().parent / "shared" / "data",
        tmp_path / "cache" / "graphrec" / "datasets",
    ]
    # a dataset only in the user's cache is found there
    monkeypatch.setattr(
        registry, "data_roots", lambda data_dir=None: [tmp_path / "shared", roots[1]]
    )
    tiny_movies(roots[1])
    assert datasets.dataset_dir("ml-latest-small-tmdb") == roots[1] / "ml-latest-small-tmdb"
    # ... and the shared copy wins over the cache
    tiny_movies(tmp_path / "shared")
    assert (
        datasets.dataset_dir("ml-latest-small-tmdb") == tmp_path / "shared" / "ml-latest-small-tmdb"
    )


def test_a_missing_dataset_says_where_it_looked_and_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.ENV_VAR, raising=False)
    monkeypatch.setattr(
        registry, "data_roots", lambda data_dir=None: [tmp_path / "a", tmp_path / "b"]
    )
    with pytest.raises(DataFormatError) as info:
        datasets.load("rlmrec-yelp")
    message = str(info.value)
    assert (
        str(tmp_path / "a" / "rlmrec-yelp") in message
        and str(tmp_path / "b" / "rlmrec-yelp") in message
    )
    assert "python -m graphrec.datasets fetch rlmrec-yelp" in message


def test_no_third_party_data_in_the_repository():
    """Only dataset cards and what graphrec generated itself (LLM replies, augmentation edges) are tracked."""
    import subprocess

    repo = Path(datasets.__file__).resolve().parents[1]
    listed = subprocess.run(
        ["git", "ls-files", "datasets"], cwd=repo, capture_output=True, text=True
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    tracked = listed.stdout.split()
    generated = {
        "datasets/ml-latest-small-tmdb/augmentation/smollm2-135m-lightgcn.jsonl",
        "datasets/ml-latest-small-tmdb/llm/smollm2-135m-kg-replies.jsonl.gz",
        "datasets/amazon18-scientific/llm/smollm2-135m-kg-replies.jsonl.gz",
    }
    assert tracked and all(path.endswith("README.md") or path in generated for path in tracked), (
        tracked
    )


def test_bad_options():
    with pytest.raises(ConfigError, match="unknown split method"):
        datasets.load("ml-latest-small-tmdb", split="sideways")
    with pytest.raises(ConfigError, match="unknown dataset"):
        datasets.load("no-such-dataset")
    with pytest.raises(DataFormatError, match="not found"):
        datasets.load("./no/such/dir")


def test_csv_path(tmp_path):
    path = write(
        tmp_path / "ratings.csv",
        "u,i,r\n" + "".join(f"{u},{i},{(u + i) % 5 + 1}\n" for u in range(6) for i in range(8)),
    )
    data = datasets.load(path, user="u", item="i", rating="r", rating_threshold=3, seed=1)
    kept = sum((u + i) % 5 + 1 >= 3 for u in range(6) for i in range(8))
    assert data.name == "ratings" and data.statistics()["interactions"] == kept
    assert data.meta["preprocessing"]["below_threshold_removed"] == 48 - kept


def test_presplit_atomic_dir_and_unseen(tmp_path):
    write(tmp_path / "b.train.inter", "user_id:token\titem_id:token\n1\ta\n2\tb\n")
    write(tmp_path / "b.test.inter", "user_id:token\titem_id:token\n1\tb\n3\ta\n")
    with pytest.raises(DataFormatError, match="unseen_users"):
        datasets.load(tmp_path)
    data = datasets.load(tmp_path, unseen_users="drop")
    assert data.meta["unseen_users_dropped"] == 1 and data.valid is None and data.n_users == 2


@needs_ml100k
def test_ml100k_atomic_directory():
    data = datasets.load(ML100K, split="temporal_user")
    stats = data.statistics()
    assert (stats["users"], stats["items"], stats["interactions"]) == (943, 1_682, 100_000)
    assert data.kg.num_triples == 91_631 and len(data.kg.item_entity) == 1_598
    assert data.item_info.loc[data.item_index(["1"])[0], "movie_title"] == "Toy Story"
    assert data.user_info.loc[data.user_index(["1"])[0], "occupation"] == "technician"
    assert data.meta["split"]["method"] == "temporal_user" and stats["train_users"] == 943


@needs_ml100k
def test_ml100k_with_threshold_and_kcore():
    data = datasets.load(ML100K, rating_threshold=4, k_core=10, split="leave_one_out")
    report = data.meta["preprocessing"]
    assert report["below_threshold_removed"] == 44_625
    assert data.test.nnz == data.n_users


def test_fetch_command_errors_are_one_clear_line(tmp_path, capsys):
    from graphrec.datasets import main

    assert main(["fetch", "ml-latest-small-tmdb", "--cache-dir", str(tmp_path)]) == 2
    assert "GRAPHREC_DATA_DIR" in capsys.readouterr().err
    # an unreachable mirror names the URL, and nothing is installed
    assert (
        main(
            [
                "fetch",
                "rlmrec-yelp",
                "--cache-dir",
                str(tmp_path),
                "--mirror",
                "http://127.0.0.1:9/m",
            ]
        )
        == 2
    )
    assert "http://127.0.0.1:9/m/" in capsys.readouterr().err and not any(tmp_path.iterdir())
