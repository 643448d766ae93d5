"""``python -m hsconas``: the ``hsconas`` command (what ``torchrun -m hsconas`` starts per rank)."""

from hsconas.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
