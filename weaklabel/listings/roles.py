"""Column roles: which columns of a listing dump hold the id, the image and the text fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal["text", "tags", "category"]
ROLES: tuple[str, ...] = get_args(Role)


class ListingsError(ValueError):
    """A problem with the listing files or the column roles, worded for the user."""


@dataclass(frozen=True)
class Field:
    """One listing column that carries text, with its role and a weight in (0, 1]."""

    column: str
    role: Role
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column.strip():
            raise ListingsError(f"a field needs a column name, got {self.column!r}")
        if self.role not in ROLES:
            raise ListingsError(
                f"field {self.column!r}: unknown role {self.role!r}; "
                f"expected one of {', '.join(ROLES)}"
            )
        if not 0 < self.weight <= 1:
            raise ListingsError(
                f"field {self.column!r}: weight must satisfy 0 < weight <= 1, "
                f"got {self.weight}"
            )

    @classmethod
    def parse(cls, spec: str, role: Role) -> Field:
        """Parse ``"title"`` (weight 1) or ``"title:0.3"`` (weight 0.3)."""
        column, sep, weight = spec.rpartition(":")
        if not sep:
            return cls(spec.strip(), role)
        try:
            value = float(weight)
        except ValueError:
            raise ListingsError(
                f"field spec {spec!r}: weight {weight.strip()!r} is not a number "
                f"(write COLUMN or COLUMN:WEIGHT with 0 < WEIGHT <= 1)"
            ) from None
        return cls(column.strip(), role, value)


@dataclass(frozen=True)
class ColumnRoles:
    """Which columns of a listing dump hold the id, the image and the text fields."""

    fields: tuple[Field, ...]
    id: str = "id"
    image: str | None = "image"
    tag_separator: str = ","
    category_separator: str = ">"
    max_field_chars: int = 20_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.fields))
        if not self.fields:
            raise ListingsError("column roles need at least one text, tags or category field")
        if not self.id:
            raise ListingsError("the id column name is empty")
        if not self.tag_separator or not self.category_separator:
            raise ListingsError("tag_separator and category_separator must be non-empty")
        if not isinstance(self.max_field_chars, int) or self.max_field_chars < 1:
            raise ListingsError(
                f"max_field_chars must be a positive integer, got {self.max_field_chars!r}"
            )
        self._check_field_columns()

    def _check_field_columns(self) -> None:
        seen: set[str] = set()
        for f in self.fields:
            if f.column in seen:
                raise ListingsError(f"column {f.column!r} is given more than one field role")
            if f.column in (self.id, self.image):
                raise ListingsError(
                    f"column {f.column!r} is the id or image column and cannot also be a field"
                )
            seen.add(f.column)

    @property
    def text_weights(self) -> dict[str, float]:
        """The free-text field columns, each with its weight."""
        return {f.column: f.weight for f in self.fields if f.role == "text"}

    @property
    def columns(self) -> list[str]:
        """The id, image (if set) and field columns, deduplicated, in that order."""
        names = [self.id, *([self.image] if self.image else []), *(f.column for f in self.fields)]
        return list(dict.fromkeys(names))

    def to_dict(self) -> dict:
        """A JSON-safe description, the inverse of :meth:`from_dict`."""
        return {
            "fields": [
                {"column": f.column, "role": f.role, "weight": f.weight} for f in self.fields
            ],
            "id": self.id,
            "image": self.image,
            "tag_separator": self.tag_separator,
            "category_separator": self.category_separator,
            "max_field_chars": self.max_field_chars,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ColumnRoles:
        """Build roles from :meth:`to_dict` output (e.g. a manifest or a config file)."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ListingsError(f"unknown column-role keys: {', '.join(sorted(unknown))}")
        try:
            fields = tuple(
                Field(f["column"], f["role"], float(f.get("weight", 1.0))) for f in d["fields"]
            )
        except (KeyError, TypeError) as e:
            raise ListingsError(
                f"column roles need 'fields': a list of {{column, role, weight}} ({e!r})"
            ) from None
        return cls(**{**d, "fields": fields})
