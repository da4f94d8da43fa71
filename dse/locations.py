"""Where a study's results go and where it runs, checked before anything is written.

A storage string is a SQLite file path or a SQLAlchemy URL of a supported backend; a
Ray address is ``auto``, ``host:port`` or ``ray://host:port`` (Ray Client, which needs
``ray[client]``). Each wrong one is one message naming the value and what is allowed,
raised while the study file is validated — so no directory or ``storage.url`` is left
behind (issue 14).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: URL schemes the store supports (dse/store.py): SQLite files and PostgreSQL
STORAGE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg2")


def check_storage(value: str | None) -> str | None:
    """``value`` if it is a usable storage location, else ``ValueError`` saying why."""
    if value is None:
        return None
    if "://" in value:
        scheme = value.split("://", 1)[0]
        if scheme not in STORAGE_SCHEMES:
            raise ValueError(
                f"storage {value!r}: scheme {scheme!r} is not supported; allowed: a file path "
                f"(SQLite) or a URL with scheme {', '.join(STORAGE_SCHEMES)}"
            )
        if scheme != "sqlite":
            return value
        value_path = Path(value.split(":///", 1)[-1])  # sqlite:///relative or :////absolute
    else:
        value_path = Path(value)
    for parent in value_path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(
                    f"storage {value!r}: {str(parent)!r} is a file, not a directory; allowed: a "
                    "path whose parent directories exist or can be created"
                )
            break
    if value_path.is_dir():
        raise ValueError(f"storage {value!r} is a directory; allowed: a database file path")
    return value


def check_ray_address(value: str | None) -> str | None:
    """``value`` if Ray can join it with the installed packages."""
    if value and value.startswith("ray://") and importlib.util.find_spec("grpc") is None:
        raise ValueError(
            f"address {value!r} is a Ray Client address, which needs `pip install 'ray[client]'` "
            "(not a cim-dse dependency); allowed here: 'auto' or host:port, run on a node of "
            "the cluster"
        )
    return value
