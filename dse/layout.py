"""The study directory, in one place: which files a study keeps and where.

``runs/<name>/`` (``--runs-dir`` changes ``runs``) holds

* ``study.db``: the SQLite store — or, when the study's ``storage`` is a server URL
  (PostgreSQL), ``storage.url``: one line with that URL;
* ``study.yaml``: the validated spec as it was run (the store holds it too);
* ``report/``: ``dse report``'s HTML and PNGs;
* ``sweep/tune/``: the Ray Tune experiment of ``dse sweep`` (what ``--resume`` restores).

Every module that reads or writes a study directory (spec, study, api, sweep, report)
asks :class:`StudyLayout`; none spells a file name itself.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from dse.errors import SpecError

__all__ = [
    "DEFAULT_RUNS_DIR",
    "StudyLayout",
    "is_url",
    "locate_store",
    "study_dir_of_store",
]

T = TypeVar("T")

DEFAULT_RUNS_DIR = Path("runs")
STORE_FILE = "study.db"
URL_FILE = "storage.url"
SPEC_FILE = "study.yaml"
REPORT_DIR = "report"
SWEEP_DIR = "sweep"
TUNE_EXPERIMENT = "tune"


def is_url(text: str) -> bool:
    """A SQLAlchemy URL (``sqlite:///...``, ``postgresql+psycopg2://...``), not a path."""
    return "://" in text


@dataclass(frozen=True)
class StudyLayout:
    """The files of one study directory."""

    root: Path

    @classmethod
    def for_study(cls, name: str, runs_dir: Path | str = DEFAULT_RUNS_DIR) -> StudyLayout:
        return cls(Path(runs_dir) / name)

    @property
    def store_file(self) -> Path:
        return self.root / STORE_FILE

    @property
    def url_file(self) -> Path:
        return self.root / URL_FILE

    @property
    def spec_file(self) -> Path:
        return self.root / SPEC_FILE

    @property
    def report_dir(self) -> Path:
        return self.root / REPORT_DIR

    @property
    def sweep_dir(self) -> Path:
        return self.root / SWEEP_DIR

    @property
    def tune_experiment(self) -> Path:
        """Where ``dse sweep`` keeps its Tune experiment (absolute: Tune wants one)."""
        return (self.sweep_dir / TUNE_EXPERIMENT).resolve()

    def storage(self, configured: str | None = None) -> str:
        """The store of a study about to run: the spec's ``storage``, else ``study.db`` here."""
        return configured or str(self.store_file)

    def recorded_storage(self) -> str:
        """The store of a recorded study: the URL in ``storage.url``, else ``study.db``."""
        if self.url_file.exists():
            return self.url_file.read_text().strip()
        return str(self.store_file)

    def open_new(self, storage: str, open_store: Callable[[str], T]) -> T:
        """Open the store of a study about to run and create its directory — leaving
        nothing behind when the store cannot be opened (a server down, a bad file).

        A directory that already records another store (``study.db`` or ``storage.url``)
        is refused: re-pointing it would hide the results it holds.
        """
        if self.url_file.exists() or self.store_file.exists():
            recorded = self.recorded_storage()
            if recorded != storage:
                raise SpecError(
                    f"{str(self.root)!r} already holds a study stored in {recorded!r}; "
                    f"refusing to point it at {storage!r}; allowed: the same storage "
                    "('dse resume' to continue), another study name or --runs-dir"
                )
        server = is_url(storage) and not storage.startswith("sqlite")
        if server:  # connect first: a dead server leaves no directory and no storage.url
            store = open_store(storage)
            self.create(storage)
            return store
        created = self._make_root()
        try:
            return open_store(storage)
        except BaseException:
            if created:  # remove only what this call made: another driver may share the dir
                self._remove_if_empty()
            raise

    def _make_root(self) -> bool:
        """Create the study directory; True only if this call created it (atomic mkdir)."""
        self.root.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.root.mkdir()
        except FileExistsError:
            return False
        return True

    def _remove_if_empty(self) -> None:
        """Undo ``_make_root`` after a failed open: an empty store file and the directory go,
        anything another process wrote meanwhile stays."""
        with contextlib.suppress(OSError):
            if self.store_file.exists() and self.store_file.stat().st_size == 0:
                self.store_file.unlink()
            self.root.rmdir()  # fails (and is ignored) unless the directory is empty

    def create(self, storage: str) -> None:
        """Make the directory; a server store is remembered in ``storage.url``."""
        self.root.mkdir(parents=True, exist_ok=True)
        if is_url(storage) and not storage.startswith("sqlite"):
            self.url_file.write_text(storage + "\n")

    def write_spec(self, spec: dict[str, Any]) -> None:
        self.spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))


def locate_store(target: Path | str) -> str:
    """The store of ``target``: a study directory, a store file or a database URL.

    Raises ``SpecError`` (one message, nothing created) when ``target`` is none of them.
    """
    text = str(target)
    if is_url(text):
        return text
    target = Path(target)
    if target.is_dir():
        storage = StudyLayout(target).recorded_storage()
        if is_url(storage) or Path(storage).exists():
            return storage
        raise SpecError(
            f"{text!r} holds no study (no {STORE_FILE} or {URL_FILE}); "
            "start one with 'dse run <study.yaml>'"
        )
    if target.exists():
        return text
    raise SpecError(
        f"{text!r} is not a study directory, a store file or a database URL "
        f"(expected e.g. runs/<study> containing {STORE_FILE})"
    )


def study_dir_of_store(store: Any) -> Path | None:
    """The study directory a store lives in (the folder of its SQLite file), or None for a
    server store."""
    for attr in ("path", "directory", "study_dir"):
        p = getattr(store, attr, None)
        if p:
            p = Path(p)
            return p.parent if p.suffix else p
    url = str(getattr(store, "url", ""))
    m = re.match(r"^sqlite:///(?P<p>.+)$", url)
    if m:
        return Path(m.group("p")).parent
    if url and not is_url(url):
        return Path(url).parent
    return None
