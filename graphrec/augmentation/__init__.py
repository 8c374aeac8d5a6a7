"""LLM user-item edge augmentation (LLMRec-style), reproducible.

* :mod:`~graphrec.augmentation.generate` — for a seeded sample of users, a trained base
  model's top-k unseen items are shown to an LLM (any ``kg`` backend: embedded SmolLM2,
  transformers, OpenAI-compatible) with the user's training history as item text; the
  LLM names one candidate the user would like and one they would not.  Answers are
  validated, every call cached, every user journaled (resumable), and each accepted
  triplet keeps its provenance.
* :mod:`~graphrec.augmentation.edges` — the replayable edge file (JSONL + header).
* :mod:`~graphrec.augmentation.sampler` — augmented triplets join BPR training for a
  share of every batch (``train.augmentation``), with loss-based denoising in both
  directions (``drop`` the largest-loss share, or LLMRec's ``keep_hard``).

Command line: ``python -m graphrec.augmentation generate|inspect`` (see :mod:`~graphrec.augmentation.cli`).
"""

from graphrec.augmentation.edges import AugmentedEdges, load_edges, read_records, write_edges
from graphrec.augmentation.parse import REASONS, Choice, Rejection, parse_choice
from graphrec.augmentation.prompt import PROMPT_VERSION, build_messages, item_text
from graphrec.augmentation.sampler import AugmentedBPRSampler, augmented_losses, select_by_loss

__all__ = [
    "PROMPT_VERSION",
    "REASONS",
    "AugmentedBPRSampler",
    "AugmentedEdges",
    "Choice",
    "GenerationReport",
    "GenerationSettings",
    "Rejection",
    "augmented_losses",
    "build_messages",
    "generate_augmentation",
    "item_text",
    "load_edges",
    "parse_choice",
    "read_records",
    "select_by_loss",
    "write_edges",
]


def __getattr__(name: str):
    # Lazy: generation pulls in the kg backends, which training never needs.
    if name in ("GenerationReport", "GenerationSettings", "generate_augmentation"):
        from graphrec.augmentation import generate

        return getattr(generate, name)
    raise AttributeError(f"module 'graphrec.augmentation' has no attribute {name!r}")
