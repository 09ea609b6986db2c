"""Run the ``syncq`` command as ``python -m syncq``."""

from __future__ import annotations

from syncq.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
