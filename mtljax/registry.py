"""One registration mechanism for every named component: a name, the object, and its options.

Tasks, datasets, backbones, MTL strategies and learning-rate schedules are each a `Registry`. An
entry's options (`Option`: a default, a one-line description and a check) are what the config
accepts for it: `config.py` derives the schema and validation from the registries, so a
component's options are declared next to the component and nowhere else.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping


@dataclasses.dataclass(frozen=True)
class Option:
    """One config option.

    Attributes:
      default: its value when the config does not set it; its type is the option's type (ints
        are accepted for floats; a list's first item gives the items' type).
      doc: one line for users.
      minimum: values must be >= minimum (None: no bound).
      positive: values must be > 0.
      below_one: values must be < 1 (with minimum 0: the interval [0, 1)).
      choices: the allowed values, or a function returning them (read when checked).
      nullable: the type (or a tuple of types) of a value that may also be None (default None).
      check: value -> what is wrong with it (a phrase) or None, for checks beyond these.
    """

    default: Any
    doc: str = ""
    minimum: float | None = None
    positive: bool = False
    below_one: bool = False
    choices: tuple | Callable[[], tuple] | None = None
    nullable: type | tuple[type, ...] | None = None
    check: Callable[[Any], str | None] | None = None

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value` (a phrase such as "must be > 0, got 0"), or None."""
        if value is None:
            return None if self.nullable else "must not be None"
        expected = _expected_types(self)
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            return f"expected {_type_name(expected)}, got {type(value).__name__} {value!r}"
        if isinstance(self.default, list) and self.default:
            item_type = type(self.default[0])
            if any(not isinstance(v, item_type) or isinstance(v, bool) for v in value):
                return f"expected a list of {item_type.__name__}, got {value!r}"
        choices = self.choices() if callable(self.choices) else self.choices
        if choices is not None and value not in choices:
            return f"unknown value {value!r}; choose one of {', '.join(map(str, choices))}"
        if self.positive and not value > 0:
            return f"must be > 0, got {value!r}"
        if self.minimum is not None and self.below_one and not self.minimum <= value < 1:
            return f"must be in [{self.minimum:g}, 1), got {value!r}"
        if self.minimum is not None and not value >= self.minimum:
            return f"must be >= {self.minimum:g}, got {value!r}"
        if self.below_one and not value < 1:
            return f"must be < 1, got {value!r}"
        return self.check(value) if self.check else None


def _expected_types(option: Option) -> tuple[type, ...]:
    if option.nullable:
        if isinstance(option.nullable, tuple):  # Several types (a task's name or its index).
            return option.nullable
        return (list, tuple) if option.nullable is list else (option.nullable,)
    default = option.default
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, float):
        return (int, float)
    if isinstance(default, (list, tuple)):
        return (list, tuple)
    return (type(default),)


def _type_name(expected: tuple[type, ...]) -> str:
    if float in expected:
        return "a number"
    if list in expected:
        return "a list"
    return " or ".join(t.__name__ for t in expected)


def defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    """The default values of a (nested) mapping of Options."""
    return {k: defaults(v) if isinstance(v, Mapping) else _copy(v.default) for k, v in options.items()}


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registered component: its name, the object and its options."""

    name: str
    value: Any
    options: Mapping[str, Option]


class Registry:
    """Components of one kind by name (`TASKS`, `DATASETS`, `BACKBONES`, `STRATEGIES`, `SCHEDULES`)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, value: Any = None, options: Mapping[str, Option] | None = None) -> Any:
        """Adds `value` under `name` with its `options`; used bare it is a decorator.

        Raises:
          ValueError: `name` is taken.
        """
        if value is None:
            return lambda v: self.register(name, v, options)
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = Entry(name, value, dict(options or {}))
        return value

    def __getitem__(self, name: str) -> Any:
        try:
            return self._entries[name].value
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {', '.join(self._entries)}") from None

    def options(self, name: str) -> dict[str, Option]:
        """The options `name` owns."""
        return dict(self._entries[name].options)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        return tuple(self._entries)


def freeze(value: Any) -> Any:
    """Deeply read-only view: dicts become MappingProxyType, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain dicts and lists again (for JSON and for building variants)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value
