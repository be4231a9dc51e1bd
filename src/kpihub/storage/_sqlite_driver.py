"""The SQLite library that every connection to a kpihub database goes through.

Where the ``pysqlite3-binary`` wheel is installed (a dependency on Linux x86-64), that
is the wheel's: a recent SQLite built with SQLite's default options (lookaside memory
on, which Debian's 3.40 is built without). Elsewhere it is Python's own ``sqlite3``.
Both have the same API; the wheel made the writer process about a tenth faster at
1,000-element batches (see docs/performance.md).

One library per process: two copies of SQLite in one process do not see each other's
POSIX locks on a file (closing one's descriptor drops the other's locks), and that can
corrupt a database. So every module that opens a kpihub database imports ``sqlite3``
from here, SQLAlchemy is handed this module too (``migrate``), and so are the tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3
else:
    try:
        from pysqlite3 import dbapi2 as sqlite3
    except ImportError:  # no wheel for this platform
        import sqlite3

__all__ = ["sqlite3"]
