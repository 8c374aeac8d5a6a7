"""The HTML report's "Explanations" section on a tiny knowledge-aware run whose right answer is known
(inference_helpers.two_clusters: x liked Alien and Cars; Blade Runner is explained by Alien through their director)."""

import dataclasses
import html

import numpy as np
import scipy.sparse as sp
from inference_helpers import kg_folder, train_tiny, two_clusters

from graphrec.experiment.runs import load_run_record
from graphrec.inference import explain, load_recommender
from graphrec.reporting.explanations import best_record, explanations_section, sample_users


def clusters_with_test():
    """two_clusters with a small test split (training evaluates on it)."""
    data = two_clusters()
    test = sp.csr_matrix((np.ones(3, np.float32), ([0, 20, 40], [2, 0, 1])), shape=data.train.shape)
    return dataclasses.replace(data, test=test)


def test_section_explains_the_best_runs_sampled_users_with_kg_paths_and_evidence(tmp_path):
    data = clusters_with_test()
    kg_run = load_run_record(
        train_tiny(tmp_path / "kg", "kglightgcn", data, kg=str(kg_folder(tmp_path)))
    )
    mf_run = load_run_record(train_tiny(tmp_path / "mf", "mf", data))
    metric = "recall@5"
    for record, value in ((kg_run, 0.5), (mf_run, 0.1)):  # make the KG run the best
        record.results["test"] = {metric: value}
    assert best_record({"mf": [mf_run], "kg": [kg_run]}, metric)[0] == "kg"
    body, warnings = explanations_section({"mf": [mf_run], "kg": [kg_run]}, metric, n_users=41, k=3)
    assert warnings == [] and "<b>kg</b>" in body and "KG paths" in body
    rec = load_recommender(kg_run.run_dir)
    users = sample_users(rec, 41)
    assert len(users) == 41 and "x" in users
    for user in users:
        assert f"<h3>user {user}</h3>" in body
        for entry in explain(rec, user=user, k=3):
            assert html.escape(entry["title"]) in body
            for reason in entry["because"]:
                assert html.escape(reason["title"]) in body
    # the known answer: x gets Blade Runner because of Alien, through Ridley Scott, with the text's evidence
    x_part = body.split("<h3>user x</h3>")[1].split("<h3>")[0]
    assert "Blade Runner" in x_part and "Alien <span" in x_part
    assert html.escape("you liked Alien; both have directed_by Ridley Scott") in x_part
    assert html.escape("“directed by Ridley Scott” (text)") in x_part


def test_section_is_left_out_without_test_metrics_and_warns_for_a_broken_run(tmp_path):
    data = clusters_with_test()
    record = load_run_record(train_tiny(tmp_path, "mf", data))
    record.results["test"] = {}
    assert explanations_section({"mf": [record]}, "recall@5") == ("", [])
    record.results["test"] = {"recall@5": 0.3}
    (record.run_dir / "checkpoints" / "best.pt").write_bytes(b"broken")
    body, warnings = explanations_section({"mf": [record]}, "recall@5")
    assert body == "" and "no explanations" in warnings[0]
