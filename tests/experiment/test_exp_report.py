"""The HTML report: content, self-containment, analyses, and rendering in a real headless browser."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from conftest import ARTIFACTS  # noqa: E402

from graphrec.cli import evaluate as evaluate_cli  # noqa: E402
from graphrec.reporting.analysis import analyze_run, popularity_buckets, user_activity_buckets  # noqa: E402
from graphrec.reporting.browser import check_page, find_chromium  # noqa: E402

KG_STATS = {
    "schema": "films@1",
    "entities": 42,
    "mentions_merged": 7,
    "journals": {
        "text": {"items_done": 20, "calls": 21, "kept": 60},
        "text_rejections": {"unsupported_tail": 30, "relation_not_in_schema": 12, "self_loop": 2},
    },
    "graph": {
        "nodes": 62,
        "edges": 80,
        "nodes_per_type": {"Film": 20, "Person": 15, "Keyword": 27},
        "edges_per_relation": {"starring": 30, "keyword": 50},
        "degree": {"min": 1, "median": 2, "mean": 2.6, "max": 11},
        "weak_components": 2,
        "largest_component": 60,
    },
}
KG_EVAL = {
    "text": {
        "items": 20,
        "triples": 60,
        "grounded_precision": 0.97,
        "gold": {
            "keyword": {
                "predicted": 50,
                "precision": 0.41,
                "gold": 90,
                "recall": 0.2,
                "gold_text_supported": 30,
                "recall_text_supported": 0.57,
            }
        },
    }
}
NOISE = {
    "metric": "recall@20",
    "levels": [0.0, 0.1, 0.2],
    "results": {"MF": [0.20, 0.19, 0.17], "LightGCN": [0.23, 0.22, 0.21]},
}


@pytest.fixture(scope="module")
def report(finished_experiment, tmp_path_factory):
    """One report over the experiment, a KG build folder and a noise table, written through the CLI."""
    exp, result, _ = finished_experiment
    root = tmp_path_factory.mktemp("report")
    kg = root / "kg-build"
    kg.mkdir()
    (kg / "stats.json").write_text(json.dumps(KG_STATS))
    (kg / "triples.tsv").write_text("item_id\trelation\ttail\n")
    (kg / "evaluation.json").write_text(json.dumps(KG_EVAL))
    (exp.directory / "noise_robustness.json").write_text(json.dumps(NOISE))
    out = root / "report.html"
    assert (
        evaluate_cli.main(["report", str(exp.directory), str(kg), "--out", str(out), "--quiet"])
        == 0
    )
    return out, exp, result


def test_report_has_every_section_and_the_comparison_table(report):
    out, exp, result = report
    page = out.read_text(encoding="utf-8")
    for anchor in (
        "comparison",
        "training",
        "metric-at-k",
        "long-tail",
        "cold-start",
        "explanations",
        "kg",
        "noise",
        "runs",
    ):
        assert f'id="{anchor}"' in page, anchor
    assert "MF (baseline)" in page and "LightGCN" in page
    mean = result.summaries[1].metrics["recall@20"]
    assert f"{mean.mean:.4f} ± {mean.std:.4f}" in page
    assert "Holm correction" in page
    # KG statistics, rejection reasons and extraction quality
    for text in (
        "entities per type",
        "unsupported_tail",
        "relation_not_in_schema",
        "grounded precision",
        "recall (text-supported)",
    ):
        assert text in page.lower(), text
    assert "noise 0.2" in page
    assert page.count("<img ") >= 8


def test_report_explains_the_best_runs_recommendations(report):
    from html import escape

    from graphrec.inference import explain, load_recommender
    from graphrec.reporting.explanations import best_record, sample_users

    out, exp, result = report
    page = out.read_text(encoding="utf-8")
    section = page.split('<section id="explanations">')[1].split("</section>")[0]
    groups = {"MF": result.records["mf"], "LightGCN": result.records["lightgcn"]}
    label, record = best_record(groups, "recall@20")
    assert f"<b>{escape(label)}</b> (seed {record.seed}" in section
    rec = load_recommender(record.run_dir)
    users = sample_users(rec)
    assert len(users) == 3
    reasons = 0
    for user in users:
        assert f"<h3>user {user}</h3>" in section
        for entry in explain(
            rec, user=user, k=5
        ):  # the real reasons: the user's most contributing items
            assert escape(entry["title"]) in section
            for reason in entry["because"]:
                reasons += 1
                assert f"{escape(reason['title'])} <span" in section
    assert reasons >= 3


def test_report_is_self_contained(report):
    out, _, _ = report
    page = out.read_text(encoding="utf-8")
    without_data = re.sub(r'src="data:[^"]*"', 'src=""', page)
    assert "http://" not in without_data and "https://" not in without_data
    assert "<script" not in page and "<link rel=\"stylesheet\"" not in page
    assert re.findall(r'src="([^"]{0,30})', page) and all(
        s.startswith("data:image/svg+xml;base64,") for s in re.findall(r'src="([^"]{0,30})', page)
    )


def test_report_analyses_match_the_saved_metrics(finished_experiment, ml_data):
    exp, result, _ = finished_experiment
    record = result.records["lightgcn"][0]
    analysis = analyze_run(record.run_dir, ml_data)
    curve = analysis["curve"]
    for k in (10, 20):  # the curve's points at the evaluated cut-offs are the run's test metrics
        i = curve["ks"].index(k)
        assert curve["recall"][i] == pytest.approx(record.metrics("test")[f"recall@{k}"], abs=1e-12)
        assert curve["ndcg"][i] == pytest.approx(record.metrics("test")[f"ndcg@{k}"], abs=1e-12)
    assert analysis["k"] == 20
    buckets = analysis["popularity_buckets"]
    assert sum(b["items"] for b in buckets) == ml_data.n_items
    assert sum(b["exposure"] for b in buckets) == pytest.approx(1.0)
    assert sum(b["test_interactions"] for b in buckets) == ml_data.test.nnz
    assert sum(b["users"] for b in analysis["user_buckets"]) == analysis["users"]
    assert (record.run_dir / "analysis" / "test.json").exists()  # cached for the next report


def test_bucket_helpers_by_hand():
    # 10 interactions: item 0 holds 5 (50%), items 1, 2 hold 2 each, item 3 holds 1, item 4 none
    pop = np.array([5, 2, 2, 1, 0])
    np.testing.assert_array_equal(popularity_buckets(pop, 2), [0, 1, 1, 1, 1])
    # shares of interactions above each item: 0, .5, .7, .9 -> quintile buckets 0, 2, 3, 4; unseen -> last
    np.testing.assert_array_equal(popularity_buckets(pop, 5), [0, 2, 3, 4, 4])
    buckets, ranges = user_activity_buckets(np.array([1, 2, 3, 4, 10, 20, 30, 40]), 2)
    np.testing.assert_array_equal(buckets, [0, 0, 0, 0, 1, 1, 1, 1])
    assert ranges == [(1, 4), (10, 40)]


def test_report_of_standalone_runs_groups_seeds(finished_experiment, tmp_path):
    exp, _, _ = finished_experiment
    runs = tmp_path / "runs"
    for seed in (1, 2):
        shutil.copytree(exp.directory / "runs" / "mf" / f"seed{seed}", runs / f"mf-seed{seed}")
    from graphrec.reporting import collect_inputs

    inputs = collect_inputs([runs])
    assert list(inputs.groups) == ["mf"] and len(inputs.groups["mf"]) == 2


def test_report_cli_errors(tmp_path, capsys):
    assert (
        evaluate_cli.main(["report", str(tmp_path), "--out", str(tmp_path / "r.html"), "--quiet"])
        == 2
    )
    assert "not a finished run" in capsys.readouterr().err


@pytest.mark.skipif(
    find_chromium() is None, reason="needs Debian's chromium package (apt-get install chromium)"
)
def test_report_renders_in_headless_chromium_without_errors(report, tmp_path):
    out, _, _ = report
    # the checker itself must catch errors and network requests: a deliberately broken page
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<img src="http://127.0.0.1:9/missing.png"><script>console.error("boom"); nope();</script>'
        "</body></html>"
    )
    bad = check_page(broken)
    assert any("boom" in e for e in bad.errors) and any("nope" in e for e in bad.errors)
    assert bad.external_requests == ["http://127.0.0.1:9/missing.png"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    page = check_page(out, screenshot=screenshot)
    assert page.errors == []
    assert page.external_requests == []
    assert page.images >= 8 and page.images_broken == 0
    assert page.title.startswith("Experiment")
    assert page.page_height > 3000 and page.text_length > 2000
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    shutil.copy(out, ARTIFACTS / "report.html")


def test_report_inputs_from_a_result_in_memory_match_the_folders(
    finished_experiment, ml_data, monkeypatch
):
    from graphrec.reporting import build_report, collect_inputs
    from graphrec.reporting import report as report_mod

    exp, result, _ = finished_experiment
    from_disk = collect_inputs([exp.directory])
    handed = collect_inputs((), experiments=[result])
    assert handed.groups.keys() == from_disk.groups.keys()
    assert handed.baseline == from_disk.baseline and handed.metrics == from_disk.metrics
    assert handed.significance == from_disk.significance and handed.noise == from_disk.noise
    for label, records in handed.groups.items():
        assert [r.run_dir for r in records] == [r.run_dir for r in from_disk.groups[label]]
    # a handed-over split is used as is: the runs' saved data sections name the same split
    handed.add_data(exp.data_config, ml_data)
    monkeypatch.setattr(report_mod, "load_data", lambda config: pytest.fail("split loaded again"))
    page = build_report(handed)
    assert 'id="long-tail"' in page and "analysis failed" not in page
