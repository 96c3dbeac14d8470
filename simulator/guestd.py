"""Entry point of the guest daemon: ``python -m simulator.guestd ...`` (see guest.py)."""

from .guest import main

raise SystemExit(main())
