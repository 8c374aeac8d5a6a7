"""The blocked InfoNCE and the shared SimGCL passes give the losses and gradients of the
implementation they replaced (kept here, verbatim in its maths, as the reference)."""

import pytest
import torch
import torch.nn.functional as F

from graphrec.config import model_config_from_dict
from graphrec.models import build_model, losses
from graphrec.models.losses import info_nce
from graphrec.models.propagation import propagate


class _ReferenceInfoNCEScaled(torch.autograd.Function):
    """graphrec's InfoNCE before the blocked version: one [n, n] exp buffer, analytic backward."""

    @staticmethod
    def forward(ctx, q, k):
        exp_logits = torch.mm(q, k.T).exp_()
        row_sums = exp_logits.sum(dim=1)
        positives = (q * k).sum(dim=1)
        ctx.save_for_backward(q, k, exp_logits, row_sums)
        return (row_sums.log() - positives).mean()

    @staticmethod
    def backward(ctx, grad):
        q, k, exp_logits, row_sums = ctx.saved_tensors
        scale = grad / q.shape[0]
        inv = (1.0 / row_sums).unsqueeze(1)
        return (torch.mm(exp_logits, k) * inv - k) * scale, (
            torch.mm(exp_logits.T, q * inv) - q
        ) * scale


def reference_info_nce(view1, view2, temperature, candidates=None):
    q = F.normalize(view1, dim=-1) / temperature
    k = F.normalize(view2, dim=-1)
    if candidates is not None:
        logits = q @ F.normalize(candidates, dim=-1).T
        return (torch.logsumexp(logits, dim=1) - (q * k).sum(-1)).mean()
    if 1.0 / temperature <= 40.0:
        return _ReferenceInfoNCEScaled.apply(q, k)
    return (torch.logsumexp(q @ k.T, dim=1) - (q * k).sum(-1)).mean()


def losses_and_grads(fn, *tensors):
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    value = fn(*leaves)
    value.backward()
    return value.detach(), [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("temperature", [0.2, 0.15, 1.0, 0.01])
@pytest.mark.parametrize(
    "n", [1, 37, 700]
)  # 700 rows: several row blocks (block = 2**18 // 700 = 374 rows)
def test_blocked_info_nce_equals_previous_implementation(temperature, n):
    torch.manual_seed(n)
    a, b = torch.randn(n, 32), torch.randn(n, 32)
    ours, ours_grads = losses_and_grads(lambda x, y: info_nce(x, y, temperature), a, b)
    ref, ref_grads = losses_and_grads(lambda x, y: reference_info_nce(x, y, temperature), a, b)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    for g, r in zip(ours_grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("temperature", [0.2, 0.01])
def test_blocked_all_node_info_nce_equals_previous_implementation(temperature):
    torch.manual_seed(3)
    everything, anchors = (
        torch.randn(5000, 32),
        torch.randn(300, 32),
    )  # 52-row blocks over 5,000 candidates
    rows = torch.randperm(5000)[:300]
    ours, ours_grads = losses_and_grads(
        lambda a, e: info_nce(a, e[rows], temperature, candidates=e), anchors, everything
    )
    ref, ref_grads = losses_and_grads(
        lambda a, e: reference_info_nce(a, e[rows], temperature, candidates=e), anchors, everything
    )
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    for g, r in zip(ours_grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-7)


def test_blocked_info_nce_gradcheck_across_blocks(monkeypatch):
    monkeypatch.setattr(
        losses, "_BLOCK_ELEMENTS", 40
    )  # 16-row blocks (the minimum) over 40 rows: 3 blocks
    a = torch.randn(40, 4, dtype=torch.double, requires_grad=True)
    b = torch.randn(40, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: info_nce(x, y, 0.3), (a, b))
    everything = torch.randn(50, 4, dtype=torch.double, requires_grad=True)
    rows = torch.arange(0, 50, 2)
    assert torch.autograd.gradcheck(
        lambda x, e: info_nce(x, e[rows], 0.3, candidates=e),
        (a[:25].detach().requires_grad_(), everything),
    )


def test_blocked_info_nce_without_grad_skips_the_gradients():
    a, b = torch.randn(30, 8, requires_grad=True), torch.randn(30, 8)
    with torch.no_grad():
        value = info_nce(a, b, 0.2)
    torch.testing.assert_close(value, reference_info_nce(a, b, 0.2).detach())
    assert value.grad_fn is None


# ------------------------------------------------------------ SimGCL's passes
def reference_encode(model, noise_eps=0.0):
    """GCLRecommender.encode before the speed work (noise through autograd, sign() included)."""
    x = model.ego()
    adjacency = model._adjacency_on(x.device)
    layers = [x]
    for _ in range(model.num_layers):
        x = propagate(adjacency, x)
        if noise_eps > 0:
            noise = F.normalize(model.rand(*x.shape, device=x.device), dim=-1)
            x = x + noise_eps * torch.sign(x) * noise
        layers.append(x)
    return layers


def assert_same_batch(model, reference, users, pos, neg):
    """``model.contrastive_loss`` and ``reference`` give the same final embeddings, loss and parameter gradients
    (the same noise for both: the model's generator is reseeded before each)."""
    results = []
    for contrastive in (model.contrastive_loss, reference):
        model.zero_grad()
        model._rng = torch.Generator().manual_seed(7)
        final, cl = contrastive(users, pos, neg)
        (cl + final.pow(2).sum()).backward()
        results.append((final.detach(), cl.detach(), [p.grad.clone() for p in model.parameters()]))
    (f1, c1, g1), (f2, c2, g2) = results
    torch.testing.assert_close(f1, f2, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(c1, c2, rtol=1e-6, atol=1e-7)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def reference_simgcl_contrastive_loss(model, users, pos, neg):
    """SimGCL's batch before the shared passes: a clean pass and two separate noisy passes."""
    final = model.combine(reference_encode(model))
    view1 = model.combine(reference_encode(model, model.config.eps))
    view2 = model.combine(reference_encode(model, model.config.eps))
    u, i = model.contrast_ids(users, pos, neg)
    return final, model.contrast(view1, view2, u, i)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"num_layers": 3, "include_ego": False, "layer_combination": "mean"},
        {"eps": 0.0},
        {"num_layers": 1, "cl_negatives": "all"},
    ],
)
def test_simgcl_shared_passes_equal_separate_passes(small_data, overrides):
    torch.manual_seed(0)
    config = model_config_from_dict(
        {"name": "simgcl", "embedding_dim": 8, "num_layers": 2, "eps": 0.5, **overrides}
    )
    model = build_model(config, small_data.n_users, small_data.n_items, small_data.train)
    users, pos, neg = (
        torch.tensor([0, 1, 2, 1]),
        torch.tensor([0, 3, 5, 2]),
        torch.tensor([4, 1, 6, 0]),
    )
    assert_same_batch(
        model, lambda u, p, n: reference_simgcl_contrastive_loss(model, u, p, n), users, pos, neg
    )


# --------------------------------------------------------------- SGL's passes
def reference_sgl_contrastive_loss(model, users, pos, neg):
    """SGL's batch before the polynomial passes: layer-by-layer encodes, combined."""
    final = model.combine(model.encode())
    if model.config.views == "rlmrec":
        view1, view2 = (
            model.combine(model._encode_directed(model._batch_view(final.device))) for _ in range(2)
        )
    else:
        view1, view2 = (model.combine(model.encode(v)) for v in model.views())
    u, i = model.contrast_ids(users, pos, neg)
    return final, model.contrast(view1, view2, u, i)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"augmentation": "nd"},
        {"augmentation": "rw"},
        {"views": "rlmrec"},
        {"layer_combination": "mean", "cl_items": "pos_neg"},
        {"include_ego": False},
    ],
)
def test_sgl_polynomial_passes_equal_layer_by_layer(small_data, overrides):
    torch.manual_seed(0)
    config = model_config_from_dict(
        {"name": "sgl", "embedding_dim": 8, "num_layers": 2, "drop_ratio": 0.3, **overrides}
    )
    model = build_model(config, small_data.n_users, small_data.n_items, small_data.train)
    model.draw_epoch_views(torch.Generator().manual_seed(3))
    users, pos, neg = (
        torch.tensor([0, 1, 2, 1]),
        torch.tensor([0, 3, 5, 2]),
        torch.tensor([4, 1, 6, 0]),
    )
    assert_same_batch(
        model, lambda u, p, n: reference_sgl_contrastive_loss(model, u, p, n), users, pos, neg
    )


def test_xsimgcl_detached_noise_equals_noise_through_autograd(small_data):
    torch.manual_seed(0)
    config = model_config_from_dict(
        {"name": "xsimgcl", "embedding_dim": 8, "num_layers": 3, "eps": 0.3}
    )
    model = build_model(config, small_data.n_users, small_data.n_items, small_data.train)
    grads, values = [], []
    for encode in (lambda: model.encode(noise_eps=0.3), lambda: reference_encode(model, 0.3)):
        model.zero_grad()
        model._rng = torch.Generator().manual_seed(5)
        layers = encode()
        loss = model.combine(layers).pow(2).sum() + layers[1].sin().sum()
        loss.backward()
        values.append(loss.detach())
        grads.append([p.grad.clone() for p in model.parameters()])
    torch.testing.assert_close(values[0], values[1], rtol=0, atol=0)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
