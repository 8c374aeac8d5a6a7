"""The entry points of graphrec, kg and alignment; every other piece of metadata is in pyproject.toml.

They stay here (pyproject.toml marks them dynamic) because ``kg.data`` finds a source checkout by this
file and ``tests/test_cli.py`` checks every console script below against a working ``main``.
"""

from setuptools import setup

setup(
    entry_points={
        "console_scripts": [
            # `graphrec recommend|serve|train|evaluate|compare|...` (the dispatcher of `python -m graphrec`)
            "graphrec=graphrec.__main__:main",
            "graphrec-train=graphrec.cli.train:main",
            "graphrec-evaluate=graphrec.cli.evaluate:main",
            "graphrec-kg=kg.cli:main",
        ],
        # models of other packages, loaded lazily by graphrec.models.load_plugins
        "graphrec.models": [
            "aligned=alignment.model:AlignedRecommender",
            "text_ease=alignment.linear:TextEASE",
            "alpharec=alignment.alpharec:AlphaRec",
            "text_init=alignment.textinit:TextInitRecommender",
        ],
    },
)
