"""graphrec's default thread count (train.num_threads: null) and its application."""

import pytest
import torch

from graphrec.errors import ConfigError
from graphrec.training import threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    "cpus, processes, expected",
    [(1, 1, 1), (2, 1, 1), (3, 1, 1), (4, 1, 2), (16, 1, 8), (64, 1, 8), (16, 2, 4), (2, 4, 1)],
)
def test_default_is_half_the_cpus_per_process_within_1_and_8(
    monkeypatch, cpus, processes, expected
):
    monkeypatch.setattr(threads, "available_cpus", lambda: cpus)
    assert threads.default_num_threads(processes) == expected


def test_configure_threads(monkeypatch, restore_threads):
    monkeypatch.setattr(threads, "available_cpus", lambda: 6)
    assert threads.configure_threads(None) == 3 == torch.get_num_threads()
    assert threads.configure_threads(2) == 2 == torch.get_num_threads()
    assert threads.configure_threads(0) == 2  # torch's default: whatever torch has, left alone
    with pytest.raises(ConfigError, match="train.num_threads"):
        threads.configure_threads(-1)
