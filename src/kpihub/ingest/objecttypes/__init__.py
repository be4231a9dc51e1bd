"""The registry of KPI object types.

An object type turns an element's ``value`` into the float that is stored.
Adding one is one module in this package (a class with ``name`` and
``parse``, and an instance called ``TYPE``) plus one entry in ``_TYPES``.
"""

from __future__ import annotations

from typing import Protocol

from kpihub.ingest.objecttypes import number

__all__ = ["REGISTRY", "ObjectType", "get", "names"]


class ObjectType(Protocol):
    @property
    def name(self) -> str:
        """The ``object_type`` string on the wire."""
        ...

    def parse(self, value: object) -> float:
        """The stored value, or :class:`kpihub.ingest.InvalidValue` explaining the problem."""
        ...


_TYPES: tuple[ObjectType, ...] = (number.TYPE,)

REGISTRY: dict[str, ObjectType] = {t.name: t for t in _TYPES}


def get(name: str) -> ObjectType | None:
    return REGISTRY.get(name)


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)
