"""RLMRec's official LightGCN (HKUDS/RLMRec, ``encoder/``), re-implemented faithfully for timing.

What RLMRec's code does, and this file does the same way:

* adjacency (``data_handler._make_torch_adj``): the ``(U+I)``-square bipartite 0/1 matrix,
  ``D^-1/2 A D^-1/2`` in SciPy, handed to torch as a sparse **COO** tensor;
* forward (``models/general_cf/lightgcn.py``): ``t.spmm(adj, embeds)`` per layer through
  stock autograd, layers summed; ``keep_rate`` 1.0 for Amazon-book, so no edge dropout;
* loss: ``sum(softplus(neg - pos)) / B`` plus ``reg_weight * sum ||W||^2`` over all
  parameters (``reg_params``);
* sampling (``data_utils/datasets_general_cf.PairwiseTrnData``): before each epoch a Python
  loop draws one negative per training interaction with ``np.random.randint``, rejecting
  those in a ``dok_matrix`` of the training items; batches come from a
  ``torch.utils.data.DataLoader`` (batch 4096, shuffled, per-sample ``__getitem__``);
* evaluation (``trainer/trainer.py`` + ``AllRankTstData``): for batches of 1024 test users,
  a dense 0/1 training mask per user (``csr[users].toarray()``), ``preds * (1 - mask) -
  1e8 * mask``, ``t.topk(20)`` and Recall@20 computed per user in Python.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SETUP, emit, sync, timed, worker_arguments  # noqa: E402

from graphrec.datasets import load  # noqa: E402


# long: RLMRec's LightGCN as its authors' code runs it, in one piece to compare line by line
def main() -> None:
    args = worker_arguments(__doc__)
    import numpy as np
    import scipy.sparse as sp
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils import data as dataloader

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    data = load("rlmrec-amazon-book")
    n_users, n_items = data.n_users, data.n_items
    device = torch.device(args.device)
    train = sp.coo_matrix(data.train)

    def make_torch_adj(mat):
        a = sp.csr_matrix((n_users, n_users))
        b = sp.csr_matrix((n_items, n_items))
        mat = sp.vstack([sp.hstack([a, mat]), sp.hstack([mat.transpose(), b])])
        mat = (mat != 0) * 1.0
        degree = np.array(mat.sum(axis=-1))
        d_inv_sqrt = np.reshape(np.power(degree, -0.5), [-1])
        d_inv_sqrt[np.isinf(d_inv_sqrt)] = 0.0
        d_inv_sqrt_mat = sp.diags(d_inv_sqrt)
        mat = mat.dot(d_inv_sqrt_mat).transpose().dot(d_inv_sqrt_mat).tocoo()
        idxs = torch.from_numpy(np.vstack([mat.row, mat.col]).astype(np.int64))
        vals = torch.from_numpy(mat.data.astype(np.float32))
        with (
            warnings.catch_warnings()
        ):  # t.sparse.FloatTensor in RLMRec; same uncoalesced COO tensor
            warnings.simplefilter("ignore")
            return torch.sparse_coo_tensor(idxs, vals, mat.shape).to(device)

    class PairwiseTrnData(dataloader.Dataset):
        def __init__(self, coomat):
            self.rows, self.cols = coomat.row, coomat.col
            self.dokmat = coomat.todok()
            self.negs = np.zeros(len(self.rows)).astype(np.int32)

        def sample_negs(self):
            for i in range(len(self.rows)):
                u = self.rows[i]
                while True:
                    i_neg = np.random.randint(n_items)
                    if (u, i_neg) not in self.dokmat:
                        break
                self.negs[i] = i_neg

        def __len__(self):
            return len(self.rows)

        def __getitem__(self, idx):
            return self.rows[idx], self.cols[idx], self.negs[idx]

    class LightGCN(nn.Module):
        def __init__(self):
            super().__init__()
            init = nn.init.xavier_uniform_
            self.user_embeds = nn.Parameter(init(torch.empty(n_users, SETUP["embedding_dim"])))
            self.item_embeds = nn.Parameter(init(torch.empty(n_items, SETUP["embedding_dim"])))
            self.adj = make_torch_adj(train)
            self.layer_num = SETUP["num_layers"]
            self.reg_weight = SETUP["l2_weight"]
            self.final_embeds = None

        def forward(self):
            embeds = torch.concat([self.user_embeds, self.item_embeds], axis=0)
            embeds_list = [embeds]
            for _ in range(self.layer_num):
                embeds_list.append(torch.spmm(self.adj, embeds_list[-1]))
            embeds = sum(embeds_list)
            return embeds[:n_users], embeds[n_users:]

        def cal_loss(self, batch_data):
            user_embeds, item_embeds = self.forward()
            ancs, poss, negs = batch_data
            anc, pos, neg = user_embeds[ancs], item_embeds[poss], item_embeds[negs]
            pos_preds, neg_preds = (anc * pos).sum(-1), (anc * neg).sum(-1)
            bpr_loss = torch.sum(F.softplus(neg_preds - pos_preds)) / anc.shape[0]
            reg_loss = 0
            for w in self.parameters():
                reg_loss += w.norm(2).square()
            return bpr_loss + self.reg_weight * reg_loss

        def full_predict(self, users, train_mask):
            # RLMRec caches the forward pass after the first test batch (final_embeds)
            if self.final_embeds is None:
                self.final_embeds = self.forward()
            user_embeds, item_embeds = self.final_embeds
            preds = user_embeds[users.long()] @ item_embeds.T
            return preds * (1 - train_mask) - 1e8 * train_mask

    model = LightGCN().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=SETUP["learning_rate"])
    trn_data = PairwiseTrnData(train)
    loader = dataloader.DataLoader(
        trn_data, batch_size=SETUP["batch_size"], shuffle=True, num_workers=0
    )

    def epoch():
        model.train()
        loader.dataset.sample_negs()
        for batch in loader:
            optimizer.zero_grad()
            batch = [t.long().to(device) for t in batch]
            loss = model.cal_loss(batch)
            loss.backward()
            optimizer.step()
        sync(args.device)

    train_csr = data.train.tocsr()
    test_csr = data.test.tocsr()
    test_users = np.flatnonzero(np.diff(test_csr.indptr) > 0)
    test_lists = [
        test_csr.indices[test_csr.indptr[u] : test_csr.indptr[u + 1]].tolist()
        for u in range(n_users)
    ]
    recall_holder = {}

    def evaluate():
        model.eval()
        model.final_embeds = None
        recall = 0.0
        with torch.no_grad():
            for start in range(0, len(test_users), 1024):
                users = test_users[start : start + 1024]
                mask = torch.from_numpy(train_csr[users].toarray()).to(device)
                preds = model.full_predict(torch.from_numpy(users).to(device), mask)
                _, top = torch.topk(preds, SETUP["topk"])
                top = top.cpu().numpy()
                for row, user in enumerate(users):  # RLMRec's metric loop, one user at a time
                    truth = test_lists[user]
                    hits = sum(1 for item in top[row] if item in truth)
                    recall += hits / len(truth)
        recall_holder["recall@20"] = recall / len(test_users)

    if args.curve_epochs:
        curve = []
        for e in range(1, args.curve_epochs + 1):
            epoch()
            if e % args.curve_every == 0 or e == args.curve_epochs:
                evaluate()
                curve.append({"epoch": e, "recall@20": recall_holder["recall@20"]})
        emit({"curve": curve, "seed": args.seed})
        return

    emit(
        {
            "epoch_seconds": timed(epoch, args.epochs),
            "eval_seconds": timed(evaluate, args.evals),
            "recall@20": recall_holder["recall@20"],
            "batches_per_epoch": len(loader),
        }
    )


if __name__ == "__main__":
    main()
