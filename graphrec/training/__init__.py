"""Training: BPR sampling (with replayed LLM-augmented triplets), the trainer with early
stopping and resume, checkpoints.

``load_data`` and ``data_fingerprint`` live in :mod:`graphrec.data`; they are exported
here too because a training script needs them beside :func:`run_training`.
"""

from graphrec.data import data_fingerprint, load_data
from graphrec.training.checkpoint import load_checkpoint, save_checkpoint
from graphrec.training.edges import AugmentedEdges, load_edges, read_records
from graphrec.training.run import load_run, run_training, seed_everything
from graphrec.training.sampler import AugmentedBPRSampler, BPRSampler, build_sampler
from graphrec.training.trainer import Trainer, TrainResult

__all__ = [
    "AugmentedBPRSampler",
    "AugmentedEdges",
    "BPRSampler",
    "Trainer",
    "TrainResult",
    "data_fingerprint",
    "build_sampler",
    "load_checkpoint",
    "load_data",
    "load_edges",
    "load_run",
    "read_records",
    "run_training",
    "save_checkpoint",
    "seed_everything",
]
