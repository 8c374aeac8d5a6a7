"""PyG's ``torch_geometric.nn.models.LightGCN`` trained as in PyG's ``examples/lightgcn.py``.

``--variant edge_index`` (default): the model gets the undirected ``edge_index`` (LGConv
normalises it with ``gcn_norm`` and message-passes on every forward, as in the example).
``--variant sparse``: the same model gets a torch sparse CSR adjacency instead (PyG's
documented sparse path: normalised per forward, ``spmm`` through stock autograd).
Per batch: positives from the shuffled training edges, negatives drawn uniformly from all
items (``torch.randint``, no rejection, as the example), ``recommendation_loss`` with its
default L2 on the batch's node embeddings.  Evaluation as in the example's ``test()``:
user batches, training edges set to ``-inf``, a dense boolean ground-truth matrix,
``topk(20)``, recall per batch.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SETUP, emit, sync, timed, worker_arguments  # noqa: E402

from graphrec.datasets import load  # noqa: E402


# long: PyG's LightGCN example as its authors run it, in one piece to compare line by line
def main() -> None:
    args = worker_arguments(__doc__)
    import numpy as np
    import torch
    from torch_geometric.nn.models import LightGCN
    from torch_geometric.utils import degree, to_torch_csr_tensor

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    data = load("rlmrec-amazon-book")
    device = torch.device(args.device)
    n_users, n_items = data.n_users, data.n_items
    num_nodes = n_users + n_items
    coo = data.train.tocoo()
    train_edge_label_index = torch.from_numpy(
        np.stack([coo.row, coo.col + n_users]).astype(np.int64)
    ).to(device)
    edge_index = torch.cat(
        [train_edge_label_index, train_edge_label_index.flip(0)], dim=1
    )  # ToUndirected
    if args.variant == "sparse":
        graph = to_torch_csr_tensor(edge_index, size=(num_nodes, num_nodes))
    else:
        graph = edge_index
    test = data.test.tocoo()
    test_edge_label_index = torch.from_numpy(
        np.stack([test.row, test.col + n_users]).astype(np.int64)
    ).to(device)

    model = LightGCN(
        num_nodes=num_nodes, embedding_dim=SETUP["embedding_dim"], num_layers=SETUP["num_layers"]
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=SETUP["learning_rate"])
    n_edges = train_edge_label_index.size(1)
    # as PyG's own LightGCN example: a range is a map-style dataset of edge indices
    loader: torch.utils.data.DataLoader[int] = torch.utils.data.DataLoader(
        range(n_edges),  # type: ignore[arg-type]
        shuffle=True,
        batch_size=SETUP["batch_size"],
    )

    def epoch():
        for index in loader:
            pos_edge_label_index = train_edge_label_index[:, index]
            neg_edge_label_index = torch.stack(
                [
                    pos_edge_label_index[0],
                    torch.randint(n_users, n_users + n_items, (index.numel(),), device=device),
                ],
                dim=0,
            )
            edge_label_index = torch.cat([pos_edge_label_index, neg_edge_label_index], dim=1)
            optimizer.zero_grad()
            pos_rank, neg_rank = model(graph, edge_label_index).chunk(2)
            loss = model.recommendation_loss(pos_rank, neg_rank, node_id=edge_label_index.unique())
            loss.backward()
            optimizer.step()
        sync(args.device)

    result = {}

    @torch.no_grad()
    def evaluate(k: int = SETUP["topk"], batch_size: int = 4096):
        emb = model.get_embedding(graph)
        user_emb, book_emb = emb[:n_users], emb[n_users:]
        recall, total_examples = 0.0, 0
        for start in range(0, n_users, batch_size):
            end = start + batch_size
            logits = user_emb[start:end] @ book_emb.t()
            mask = (train_edge_label_index[0] >= start) & (train_edge_label_index[0] < end)
            logits[
                train_edge_label_index[0, mask] - start, train_edge_label_index[1, mask] - n_users
            ] = float("-inf")
            ground_truth = torch.zeros_like(logits, dtype=torch.bool)
            mask = (test_edge_label_index[0] >= start) & (test_edge_label_index[0] < end)
            ground_truth[
                test_edge_label_index[0, mask] - start, test_edge_label_index[1, mask] - n_users
            ] = True
            node_count = degree(test_edge_label_index[0, mask] - start, num_nodes=logits.size(0))
            topk_index = logits.topk(k, dim=-1).indices
            isin_mat = ground_truth.gather(1, topk_index)
            recall += float((isin_mat.sum(dim=-1) / node_count.clamp(1e-6)).sum())
            total_examples += int((node_count > 0).sum())
        sync(args.device)
        result["recall@20"] = recall / total_examples

    emit(
        {
            "epoch_seconds": timed(epoch, args.epochs),
            "eval_seconds": timed(evaluate, args.evals),
            "recall@20": result["recall@20"],
            "batches_per_epoch": len(loader),
        }
    )


if __name__ == "__main__":
    main()
