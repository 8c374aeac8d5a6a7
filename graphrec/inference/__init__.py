"""Use a trained model: load a run, recommend, fold in new users, explain, export and serve.

>>> from graphrec.inference import load_recommender
>>> rec = load_recommender("runs/ml-latest-small-tmdb-lightgcn-seed0")   # doctest: +SKIP
>>> rec.recommend(["1"], k=10)                                            # doctest: +SKIP
>>> rec.recommend_for_items(["318", "296"], k=10)                         # doctest: +SKIP
"""

from graphrec.data.bundle import BUNDLE_DIR, has_bundle, load_bundle, save_bundle
from graphrec.inference.explain import explain
from graphrec.inference.load import load_recommender
from graphrec.inference.recommender import (
    InvalidRequestError,
    Recommendation,
    TrainedRecommender,
    UnknownIdError,
)

__all__ = [
    "BUNDLE_DIR",
    "InvalidRequestError",
    "Recommendation",
    "TrainedRecommender",
    "UnknownIdError",
    "explain",
    "has_bundle",
    "load_bundle",
    "load_recommender",
    "save_bundle",
]
