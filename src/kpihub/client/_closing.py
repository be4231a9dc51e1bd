"""``with thing: ...`` for the client's objects that own something to close."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class Closing(ABC):
    """``__enter__`` gives the object itself; ``__exit__`` calls its ``close()``."""

    @abstractmethod
    def close(self) -> None:
        """Release what the object owns (connections, files)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
