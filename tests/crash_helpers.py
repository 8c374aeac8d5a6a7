"""One crash injection for the resume tests: a training run interrupted mid-epoch, as by Ctrl-C or a crash.

The resume tests of the trainer, the contrastive and knowledge-aware models and augmented training all
need the same thing: a run that dies after its N-th epoch with its checkpoints on disk, and the real
trainer back for the resumed run that follows.  Import it as ``from crash_helpers import
crash_after_epochs`` (``tests/conftest.py`` puts this folder on ``sys.path``).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from graphrec.training import Trainer


@contextmanager
def crash_after_epochs(done: int) -> Iterator[None]:
    """Every ``Trainer`` in the block raises ``KeyboardInterrupt`` when it starts epoch ``done + 1``.

    The block must end in that crash (the test fails otherwise: a run too short to reach it tests no
    resume); the real ``Trainer._train_epoch`` is restored on leaving it.
    """
    original = Trainer._train_epoch

    def crash(self: Trainer, progress: bool) -> dict[str, float]:
        if self.epoch == done:
            raise KeyboardInterrupt(f"simulated crash after {done} epochs")
        return original(self, progress)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "_train_epoch", crash)
        with pytest.raises(KeyboardInterrupt, match="simulated crash"):
            yield
