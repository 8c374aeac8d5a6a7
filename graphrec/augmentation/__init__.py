"""LLM user-item edge augmentation (LLMRec-style), reproducible.

* :mod:`~graphrec.augmentation.generate` — for a seeded sample of users, a trained base
  model's top-k unseen items are shown to an LLM (any ``kg`` backend: embedded SmolLM2,
  transformers, OpenAI-compatible) with the user's training history as item text; the
  LLM names one candidate the user would like and one they would not.  Answers are
  validated, every call cached, every user journaled (resumable), and each accepted
  triplet keeps its provenance.
* :mod:`~graphrec.augmentation.edges` — writes the replayable edge file (JSONL + header;
  the format and its reader are :mod:`graphrec.training.edges`).

This is an LLM stage beside the pipeline, above training: it uses a trained base run for
the candidates.  Training only replays the file it writes — the augmented sampler
(:class:`graphrec.training.sampler.AugmentedBPRSampler`, ``train.augmentation``) mixes
its triplets into a share of every batch, with loss-based denoising.

Command line: ``graphrec augment generate|inspect`` (also ``python -m graphrec.augmentation``;
see :mod:`~graphrec.augmentation.cli`).
"""

from graphrec.augmentation.edges import write_edges
from graphrec.augmentation.generate import (
    GenerationReport,
    GenerationSettings,
    generate_augmentation,
)
from graphrec.augmentation.parse import REASONS, Choice, Rejection, parse_choice
from graphrec.augmentation.prompt import PROMPT_VERSION, build_messages, item_text
from graphrec.training.edges import AugmentedEdges, load_edges, read_records

__all__ = [
    "PROMPT_VERSION",
    "REASONS",
    "AugmentedEdges",
    "Choice",
    "GenerationReport",
    "GenerationSettings",
    "Rejection",
    "build_messages",
    "generate_augmentation",
    "item_text",
    "load_edges",
    "parse_choice",
    "read_records",
    "write_edges",
]
