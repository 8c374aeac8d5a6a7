"""Training: BPR sampling, the trainer with early stopping and resume, checkpoints."""

from graphrec.training.checkpoint import data_fingerprint, load_checkpoint, save_checkpoint
from graphrec.training.run import load_data, load_run, run_training, seed_everything
from graphrec.training.sampler import BPRSampler
from graphrec.training.trainer import Trainer, TrainResult

__all__ = [
    "BPRSampler",
    "Trainer",
    "TrainResult",
    "data_fingerprint",
    "load_checkpoint",
    "load_data",
    "load_run",
    "run_training",
    "save_checkpoint",
    "seed_everything",
]
