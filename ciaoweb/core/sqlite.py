"""SQLite database files are private (0600): they hold password hashes and API tokens.

`private_database_files` creates a missing database file 0600 before SQLite opens it (so
it never exists with the umask's 0644) and tightens an existing one and its `-wal`,
`-shm` and `-journal` companions (SQLite gives those the database file's mode). Called
from settings for the configured database and at every new connection
(`connection_created`, connected in `CoreConfig.ready`). No Django imports here:
settings imports it.
"""

from __future__ import annotations

import os
from pathlib import Path

SQLITE_ENGINE = "django.db.backends.sqlite3"
COMPANIONS = ("", "-wal", "-shm", "-journal")
MODE = 0o600


def database_path(settings_dict: dict) -> Path | None:
    """The file of a file-backed SQLite database, else None (another engine, memory)."""
    if settings_dict.get("ENGINE") != SQLITE_ENGINE:
        return None
    name = str(settings_dict.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
        return None
    return Path(name)


def private_database_files(settings_dict: dict) -> None:
    path = database_path(settings_dict)
    if path is None:
        return
    try:
        if not path.exists() and path.parent.is_dir():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, MODE))  # empty: a new database
        for suffix in COMPANIONS:
            companion = Path(f"{path}{suffix}")
            if companion.exists() and companion.stat().st_mode & 0o777 != MODE:
                companion.chmod(MODE)
    except OSError:
        pass  # not ours to change (another owner): SQLite itself will say what is wrong


def on_connection_created(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        private_database_files(connection.settings_dict)
