"""The collaborative knowledge graph: users, items and KG entities in one typed graph.

* :mod:`graphrec.knowledge.sources` reads triples from the dataset's gold facts
  (``data.kg``), the ``kg`` package's export (integer arrays + id maps), RecBole
  ``.kg`` / ``.link`` files or any plain triples table, into one raw-id form;
* :mod:`graphrec.knowledge.graph` maps them onto a dataset's internal ids, joins the
  training interactions (:class:`CollaborativeKG`: typed ``edge_index`` /
  ``edge_type``, PyG ``HeteroData``), and prunes triples by a score — the source's
  (confidence, alignment agreement) or :func:`collaborative_agreement`.

Knowledge-aware models (:mod:`graphrec.models.kg_lightgcn`, :mod:`graphrec.models.kgat`)
build their graph with :func:`knowledge_graph_for` in their ``prepare`` step.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from graphrec.data.dataset import InteractionData
from graphrec.errors import ConfigError
from graphrec.knowledge.graph import (
    CollaborativeKG,
    build_collaborative_kg,
    collaborative_agreement,
)
from graphrec.knowledge.sources import (
    load_knowledge,
    read_kg_arrays,
    read_recbole_kg,
    read_triples_table,
)


def knowledge_graph_for(
    config: object,
    data: InteractionData | None,
    *,
    n_users: int | None = None,
    n_items: int | None = None,
    train: sp.csr_matrix | None = None,
) -> CollaborativeKG:
    """The CKG a knowledge-aware model config asks for (its ``kg*`` fields).

    ``config.kg`` is ``None`` (interactions only), ``"dataset"`` or a path (see
    :func:`load_knowledge`); then ``kg_relations``, ``kg_min_entity_degree`` and the
    score pruning (``kg_score`` = ``source`` | ``collaborative``, ``kg_min_score``,
    ``kg_drop_fraction``) are applied in that order.  Without ``data`` (only with
    ``kg: null``) the graph is built on ``train`` with ``n_users`` x ``n_items``.
    """
    source = getattr(config, "kg", None)
    if data is None:
        if source is not None:
            raise ConfigError(
                f"model.kg={source!r}: a knowledge-aware model needs the dataset to map the KG's raw item ids; "
                "build it with build_model(config, n_users, n_items, train, data=data)"
            )
        if n_users is None or n_items is None or train is None:
            raise ValueError("knowledge_graph_for without data needs n_users, n_items and train")
        data = InteractionData(
            name="interactions",
            user_ids=np.arange(n_users).astype(str).astype(object),
            item_ids=np.arange(n_items).astype(str).astype(object),
            train=train,
            test=train,
        )
    kg = (
        None
        if source is None
        else load_knowledge(source, data, link=getattr(config, "kg_link", None))
    )
    ckg = build_collaborative_kg(
        data,
        kg,
        relations=getattr(config, "kg_relations", None),
        min_entity_degree=getattr(config, "kg_min_entity_degree", 1),
    )
    min_score = getattr(config, "kg_min_score", None)
    drop_fraction = getattr(config, "kg_drop_fraction", None)
    if ckg.n_triples and (min_score is not None or drop_fraction is not None):
        scores = (
            collaborative_agreement(ckg)
            if getattr(config, "kg_score", "source") == "collaborative"
            else None
        )
        if scores is None and ckg.scores is None:
            raise ConfigError(
                "model.kg_min_score / kg_drop_fraction with kg_score=source: the KG source has no score column"
            )
        ckg = ckg.prune(scores=scores, min_score=min_score, drop_fraction=drop_fraction)
    return ckg


__all__ = [
    "CollaborativeKG",
    "build_collaborative_kg",
    "collaborative_agreement",
    "knowledge_graph_for",
    "load_knowledge",
    "read_kg_arrays",
    "read_recbole_kg",
    "read_triples_table",
]
