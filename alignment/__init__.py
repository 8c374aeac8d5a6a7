"""alignment: contrastive alignment of text embeddings with GNN embeddings.

Plugs into graphrec's model/trainer contract; graphrec never imports it. The
objectives arrive with their own issue; this package is installed now so the
import direction is fixed from the start.
"""
