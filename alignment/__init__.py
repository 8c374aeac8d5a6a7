"""Text-graph alignment for graphrec: text encoders, user/item texts, aligned models, denoising, cold start.

The model ``aligned`` (:class:`~alignment.model.AlignedRecommender`) reaches graphrec
through the ``graphrec.models`` entry point, so any config can use it::

    model:
      name: aligned
      backbone: {name: lightgcn, num_layers: 3}
      objective: contrastive      # or generative
      weight: 0.1
      temperature: 0.2
      fusion_weight: 0.2

See ``alignment/README.md`` for the full API.
"""

from alignment.coldstart import (
    cold_start_split,
    restrict_to_items,
    text_item_knn_scorer,
    text_profile_scorer,
)
from alignment.denoise import (
    DenoiseReport,
    denoise_interactions,
    denoise_triples,
    interaction_agreement,
    triple_agreement,
)
from alignment.encoders import EMBEDDED_ENCODER, EmbeddingCache, SentenceEncoder, encode_texts
from alignment.losses import info_nce
from alignment.model import AlignedConfig, AlignedInputs, AlignedRecommender
from alignment.noise import inject_noise
from alignment.texts import item_texts, llm_profiles, mean_profiles, profile_prompts
from alignment.views import TextViews, build_text_views

__all__ = [
    "AlignedConfig",
    "AlignedInputs",
    "AlignedRecommender",
    "DenoiseReport",
    "EMBEDDED_ENCODER",
    "EmbeddingCache",
    "SentenceEncoder",
    "TextViews",
    "build_text_views",
    "cold_start_split",
    "denoise_interactions",
    "denoise_triples",
    "encode_texts",
    "info_nce",
    "inject_noise",
    "interaction_agreement",
    "item_texts",
    "llm_profiles",
    "mean_profiles",
    "profile_prompts",
    "restrict_to_items",
    "text_item_knn_scorer",
    "text_profile_scorer",
    "triple_agreement",
]
