"""`kg build` and `kg evaluate` on the product catalogue amazon18-scientific, found by name."""

from __future__ import annotations

import json

from chat_server import ChatServer
from fakes import item_text

from kg.cli import main


def first_word_is_the_brand(messages: list[dict]) -> str:
    """A deterministic 'model' for products: the title's first word as the brand."""
    text = item_text(messages)
    return json.dumps(
        {"brand": [text.split()[0]], "category": ["Staples"] if "Staples" in text else []}
    )


def test_build_and_evaluate_the_product_catalogue_by_name(tmp_path, capsys):
    out = tmp_path / "run"
    with ChatServer(responder=first_word_is_the_brand) as server:
        # no --schema / --text-columns: the dataset's own (products; title + description)
        code = main(
            [
                "build",
                "--dataset",
                "amazon18-scientific",
                "--limit",
                "4",
                "--backend",
                "openai",
                "--base-url",
                server.base_url,
                "--model",
                "fake",
                "--out",
                str(out),
                "--no-embeddings",
                "--quiet",
            ]
        )
        assert code == 0 and len(server.requests) == 4
        # requests run concurrently: find item 0's prompt among them
        prompts = [request["body"]["messages"][-1]["content"] for request in server.requests]
    first = [prompt for prompt in prompts if "SUPCO SPP6 Relay/Capacitor Hard Start Kit" in prompt]
    assert len(first) == 1 and "compressor starting torque" in first[0]
    summary = json.loads(capsys.readouterr().out)
    assert summary["items_done"] == 4
    assert main(["stats", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["nodes_per_type"]["Product"] == 4
    assert (
        main(
            [
                "evaluate",
                str(out),
                "--dataset",
                "amazon18-scientific",
                "--json",
                str(tmp_path / "q.json"),
            ]
        )
        == 0
    )
    gold = json.loads((tmp_path / "q.json").read_text())["text"]["gold"]
    # items 1-3 are Stanley, Stanley, Kreg: the first word; item 0 is SUPCO, whose gold brand is spelled out
    assert gold["brand"]["predicted"] == 4 and gold["brand"]["precision"] == 0.75
    assert gold["category"]["precision"] == 1.0 and gold["category"]["gold"] > 4
