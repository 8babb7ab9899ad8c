"""Registries: the short names by which configs pick models, couplings, integrators, noise, BOLD.

One mechanism for every family of components. A :class:`Registry` is a read-only mapping from a
short config name to a class (or, for BOLD presets, a table of coefficients), filled by a
decorator where the class is defined:

>>> from brainfit.registry import Registry
>>> SHAPES = Registry("shape")
>>> @SHAPES.register("square")
... class Square:
...     def __init__(self, side=1.0):
...         self.side = side
>>> SHAPES.available()
['square']
>>> SHAPES.create("square", side=2.0).side
2.0
>>> SHAPES.get("circle")
Traceback (most recent call last):
...
brainfit.registry.UnknownNameError: unknown shape 'circle'; valid names are ['square']

An unknown name raises :class:`UnknownNameError`, a ``ValueError`` (the error for a bad config
value) that is also a ``KeyError`` (so ``name in registry`` and ``registry.get(name, default)``
behave as for a dict), and its message lists the valid names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_MISSING: Any = object()


class UnknownNameError(KeyError, ValueError):
    """A name that is not registered; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class Registry(Mapping[str, T], Generic[T]):
    """A named family of components: ``name -> class`` (or any object).

    Args:
        kind: what is registered, singular (``"model"``, ``"coupling"``), used in messages.
        listing: how the message introduces the valid names (``"valid names"``, ``"available
            models"``): ``"unknown <kind> '<name>'; <listing> are [...]"``.
        hint: appended to the message of an unknown name (another place to look, say).
        name_attr: attribute that :meth:`register` sets on a registered class to its name
            (``None``: leave the class alone).
    """

    def __init__(self, kind: str, *, listing: str = "valid names", hint: str = "",
                 name_attr: str | None = "name") -> None:
        self.kind = kind
        self.listing = listing
        self.hint = hint
        self.name_attr = name_attr
        self._entries: dict[str, T] = {}

    # -- filling ----------------------------------------------------------------------------------
    def register(self, name: str | None = None, obj: T = _MISSING) -> Any:
        """Register ``obj`` under ``name``; without ``obj``, a class decorator that does.

        ``name`` defaults to the object's ``name_attr`` attribute (``cls.name``). Registering a
        second, different object under a taken name is an error.

        Raises:
            ValueError: no name given or found, or the name is taken by another object.
        """
        if obj is _MISSING:
            def wrap(cls: T) -> T:
                return self.register(name, cls)

            return wrap
        if name is None:
            name = getattr(obj, self.name_attr, None) if self.name_attr else None
            if not name:
                raise ValueError(f"register a {self.kind} with a name: register('name') or a "
                                 f"non-empty {self.name_attr!r} attribute")
        if name in self._entries and self._entries[name] is not obj:
            raise ValueError(f"{self.kind} name {name!r} is already registered to "
                             f"{self._entries[name]!r}")
        if self.name_attr and isinstance(obj, type):
            setattr(obj, self.name_attr, name)
        self._entries[name] = obj
        return obj

    # -- reading ----------------------------------------------------------------------------------
    def available(self) -> list[str]:
        """Sorted registered names."""
        return sorted(self._entries)

    def get(self, name: str, default: Any = _MISSING) -> T:
        """The object registered as ``name`` (``default`` if given and ``name`` is unknown).

        Raises:
            UnknownNameError: ``name`` is not registered and no default was given.
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):  # TypeError: an unhashable "name"
            if default is not _MISSING:
                return default
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; {self.listing} are {self.available()}"
                f"{self.hint}") from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call (instantiate) the object registered as ``name`` with the given arguments."""
        factory: Callable[..., Any] = self.get(name)  # type: ignore[assignment]
        return factory(*args, **kwargs)

    # -- Mapping ----------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        try:
            return name in self._entries
        except TypeError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.available()})"
