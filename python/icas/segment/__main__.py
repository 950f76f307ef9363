"""``python -m icas.segment``: the ``icas-segment`` command."""

from icas.segment.cli import run

if __name__ == "__main__":
    run()
