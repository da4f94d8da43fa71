"""Where a study's results go and where it runs, checked before anything is written.

A storage string is a SQLite file path or a SQLAlchemy URL of a supported backend; a
Ray address is ``auto``, ``host:port`` or ``ray://host:port`` (Ray Client, which needs
``ray[client]``). Each wrong one is one message naming the value and what is allowed,
raised while the study file is validated — so no directory or ``storage.url`` is left
behind (issue 14).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

#: URL schemes the store supports (dse/store.py): SQLite files and PostgreSQL
STORAGE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg2", "postgresql+psycopg")

#: the Python module each PostgreSQL driver scheme imports, and how to install it
_PG_DRIVERS = {
    "postgresql+psycopg2": ("psycopg2", "pip install psycopg2-binary"),
    "postgresql+psycopg": ("psycopg", "pip install 'psycopg[binary]'"),
}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def sqlalchemy_url(value: str) -> str:
    """The URL handed to SQLAlchemy for a storage string (paths are left alone).

    A bare ``postgresql://`` means "PostgreSQL, whichever driver is installed": SQLAlchemy
    2.1 maps it to psycopg 3, while cim-dse installs psycopg2 (``psycopg2-binary``), so
    without this a documented URL fails with ``No module named 'psycopg'``.
    """
    if value.startswith("postgresql://") and not _installed("psycopg"):
        if _installed("psycopg2"):
            return "postgresql+psycopg2://" + value[len("postgresql://") :]
    return value


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
            driver = sqlalchemy_url(value).split("://", 1)[0]
            module, install = _PG_DRIVERS.get(driver, ("psycopg", "pip install 'psycopg[binary]'"))
            if not _installed(module):
                raise ValueError(
                    f"storage {value!r}: the PostgreSQL driver {module!r} is not installed; "
                    f"allowed: install it ({install}) or use a SQLite file path"
                )
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


def check_output(path: Path | str, flag: str, *, kind: str = "file") -> Path:
    """``path`` if a command can write a ``kind`` (``file`` or ``dir``) there, else
    ``ValueError`` naming the flag, the path and why — checked before any work is done so
    a failed command leaves nothing behind. Missing parent directories are allowed (the
    writer creates them); an existing file where a directory must be is not.
    """
    path = Path(path)
    if kind == "file" and path.is_dir():
        raise ValueError(f"{flag} {str(path)!r} is a directory; allowed: a file path")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {str(path)!r} is a file; allowed: a directory path")
    for parent in path.absolute().parents:
        if not parent.exists():
            continue
        if not parent.is_dir():
            raise ValueError(
                f"{flag} {str(path)!r}: {str(parent)!r} is a file, not a directory; allowed: "
                "a path whose parent directories exist or can be created"
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ValueError(
                f"{flag} {str(path)!r}: directory {str(parent)!r} is not writable; allowed: a "
                "path under a directory you can write"
            )
        break
    return path
