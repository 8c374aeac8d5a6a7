"""RecBole 1.2.1's LightGCN on rlmrec-amazon-book (runs in benchmarks/anchors/.venv, see requirements.txt).

RecBole reads the dataset's atomic files directly (``benchmark_filename``: train/valid/test);
one training epoch is ``Trainer._train_epoch`` (RecBole's own sampler and data loader) and
the evaluation is ``Trainer.evaluate`` on the test split (full ranking, train and valid items
masked, RecBole's own top-k and metrics).
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA_DIR, DATASET, SETUP, emit, worker_arguments  # noqa: E402


def main() -> None:
    args = worker_arguments(__doc__)
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(args.threads)
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    checkpoints = Path(os.environ.get("TMPDIR", "/tmp")) / "graphrec-speed-recbole"
    config = Config(
        model="LightGCN",
        dataset=DATASET,
        config_dict={
            "data_path": str(DATA_DIR.parent),
            "benchmark_filename": ["train", "valid", "test"],
            "load_col": {"inter": ["user_id", "item_id"]},
            "embedding_size": SETUP["embedding_dim"],
            "n_layers": SETUP["num_layers"],
            "reg_weight": SETUP["l2_weight"],
            "learning_rate": SETUP["learning_rate"],
            "train_batch_size": SETUP["batch_size"],
            "eval_batch_size": 4096 * 8,
            "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
            "eval_args": {"mode": "full", "order": "RO", "group_by": "user"},
            "metrics": ["Recall", "NDCG"],
            "topk": [SETUP["topk"]],
            "valid_metric": "Recall@20",
            "device": args.device,
            "use_gpu": args.device.startswith("cuda"),
            "seed": args.seed,
            "reproducibility": True,
            "show_progress": False,
            "checkpoint_dir": str(checkpoints),
            "log_wandb": False,
            "worker": 0,
            "state": "WARNING",
        },
    )
    init_seed(config["seed"], config["reproducibility"])
    logging.getLogger().setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)  # init_seed / Config may reset it
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = LightGCN(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)
    epoch_seconds, eval_seconds, result = [], [], {}
    for epoch in range(args.epochs + 1):
        start = time.perf_counter()
        trainer._train_epoch(train_data, epoch, show_progress=False)
        if epoch > 0:
            epoch_seconds.append(time.perf_counter() - start)
    for repeat in range(args.evals + 1):
        start = time.perf_counter()
        result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
        if repeat > 0:
            eval_seconds.append(time.perf_counter() - start)
    emit(
        {
            "epoch_seconds": epoch_seconds,
            "eval_seconds": eval_seconds,
            "recall@20": float(result["recall@20"]),
            "eval_masks": "train + valid (RecBole's full ranking)",
            "batches_per_epoch": len(train_data),
            "versions": {"recbole": __import__("recbole").__version__, "torch": torch.__version__},
        }
    )


if __name__ == "__main__":
    main()
