"""Shared fixtures of the kg tests: a local chat-completions server and a fake backend."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from chat_server import ChatServer  # noqa: E402
from fakes import FakeBackend, fake_reply  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running test (deselect with -m 'not slow')")
    # rdflib's own serializers call its deprecated Dataset API; not ours to fix
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:rdflib.*")


@pytest.fixture
def chat_server():
    with ChatServer(responder=fake_reply) as server:
        yield server


@pytest.fixture
def fake_backend():
    return FakeBackend()


@pytest.fixture(scope="session")
def films_schema():
    """The shipped films schema with every relation kept: these tests pin extraction and
    validation; the shipped ``default_off`` (issue 19) is tested in test_known_entities.py."""
    import dataclasses

    from kg.schema import load_schema

    return dataclasses.replace(load_schema("films"), default_off={})
