"""``python -m graphrec.experiment > configs/experiments/README.md``: the experiment and search file reference."""

from graphrec.experiment.reference import reference

print(reference(), end="")
