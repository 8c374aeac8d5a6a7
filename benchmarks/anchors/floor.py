"""The floor of a LightGCN epoch: only its sparse products (no sampler, loss or optimiser).

``--variant custom`` (default): per batch, 3 forward products ``Â x`` and 3 backward ones
through an autograd function whose backward reuses the symmetric ``Â`` (``torch.sparse.mm``
on an int64 CSR tensor, the way a plain PyTorch implementation calls it).
``--variant stock``: the same 3 products through stock autograd, which transposes the CSR
matrix on every backward.  The evaluation floor is dense scores for all test users in
batches of 4096, their training items set to ``-inf`` and ``torch.topk(20)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SETUP, emit, sync, timed, worker_arguments  # noqa: E402

from graphrec.datasets import load  # noqa: E402
from graphrec.models.propagation import bipartite_adjacency, symmetric_normalize, to_torch_csr  # noqa: E402


def main() -> None:
    args = worker_arguments(__doc__)
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    class SymmetricMM(torch.autograd.Function):
        @staticmethod
        def forward(ctx, adjacency, x):
            ctx.adjacency = adjacency
            return torch.sparse.mm(adjacency, x)

        @staticmethod
        def backward(ctx, grad):
            return None, torch.sparse.mm(ctx.adjacency, grad)

    data = load("rlmrec-amazon-book")
    device = torch.device(args.device)
    adjacency = to_torch_csr(
        symmetric_normalize(bipartite_adjacency(data.train)), device, index_dtype=torch.int64
    )
    n_nodes = adjacency.shape[0]
    x = torch.nn.Parameter(torch.randn(n_nodes, SETUP["embedding_dim"], device=device) * 0.1)
    grad = torch.randn(n_nodes, SETUP["embedding_dim"], device=device)
    batches = -(-data.train.nnz // SETUP["batch_size"])
    stock = args.variant == "stock"

    def epoch():
        for _ in range(batches):
            h = x
            for _ in range(SETUP["num_layers"]):
                h = torch.sparse.mm(adjacency, h) if stock else SymmetricMM.apply(adjacency, h)
            h.backward(grad)
            x.grad = None
        sync(args.device)

    test = data.test.tocsr()
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    train = data.train.tocsr()
    user_emb, item_emb = x.detach()[: data.n_users], x.detach()[data.n_users :]

    def evaluate():
        with torch.no_grad():
            for start in range(0, len(users), 4096):
                batch = users[start : start + 4096]
                scores = user_emb[torch.from_numpy(batch).to(device)] @ item_emb.T
                sub = train[batch]
                rows = np.repeat(np.arange(len(batch)), np.diff(sub.indptr))
                flat = torch.from_numpy(rows * data.n_items + sub.indices).to(device)
                scores.view(-1).index_fill_(0, flat, float("-inf"))
                torch.topk(scores, SETUP["topk"], dim=1)
        sync(args.device)

    emit(
        {
            "epoch_seconds": timed(epoch, args.epochs),
            "eval_seconds": None if stock else timed(evaluate, args.evals),
            "batches_per_epoch": batches,
        }
    )


if __name__ == "__main__":
    main()
