"""``python -m xstochsr ...`` (also what ``torchrun -m xstochsr train ...`` runs)."""

from .cli import main

raise SystemExit(main())
