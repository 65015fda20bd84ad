"""User edits to the vocabulary, applied at fit time so a rebuild keeps them.

An overrides file is TOML (a dict with the same keys works from Python)::

    delete = ["gift", "sale"]                # labels to remove (their terms are dropped)

    [rename]                                 # label -> new display name
    "tshirt" = "t-shirt"

    [merge]                                  # target label <- labels or terms merged into it;
                                             # the target's label keeps its name; a term in no
                                             # label (too rare, ...) is pulled in with its support
    "sneakers" = ["trainers", "running shoes"]

    [add]                                    # a new label made of these terms, whatever
    "tea towel" = ["tea towel", "dish towel"]   # their support or earlier clustering

    [facets]                                 # a facet of these labels, under this name; the
    colour = ["black", "white", "navy"]      # labels that behave like them join it

and, with ``delete`` before any table, ``unfaceted = ["printed"]``: labels kept out of every facet.

A label is named by its name or by any of its terms. Edits are applied in the order add,
merge, delete, rename; facets are seeded once the labels are final (see
:mod:`weaklabel.labeling.facets`): naming a facet's labels names it, naming labels of two facets
merges them, naming a label moves it; two seeds split a facet (one alone pulls the rest back in).
A name that matches nothing, or an added term that is no term of the listings, is an error, so
no edit is silently lost.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..textfile import TextFileError, read_text
from .text import as_term

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

KEYS = {"delete", "rename", "merge", "add", "facets", "unfaceted"}


class OverridesError(ValueError):
    pass


@dataclass
class Overrides:
    delete: list[str] = field(default_factory=list)
    rename: dict[str, str] = field(default_factory=dict)
    merge: dict[str, list[str]] = field(default_factory=dict)
    add: dict[str, list[str]] = field(default_factory=dict)
    facets: dict[str, list[str]] = field(default_factory=dict)
    unfaceted: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, source: str | Path | dict | None) -> Overrides:
        """Read and check overrides: a TOML file, a dict of the same keys, or None (no edits)."""
        if source is None:
            return cls()
        if isinstance(source, dict):
            return cls._checked(source, "overrides")
        path = Path(source)
        if not path.is_file():
            raise OverridesError(f"overrides file not found: {path}")
        try:
            data = tomllib.loads(read_text(path, "an overrides file (TOML)"))
        except tomllib.TOMLDecodeError as error:
            raise OverridesError(f"{path} is not valid TOML: {error}") from None
        except TextFileError as error:
            raise OverridesError(str(error)) from None
        return cls._checked(data, str(path))

    @classmethod
    def _checked(cls, data: dict, where: str) -> Overrides:
        """Overrides from ``data``, each value checked, so that no edit fails half-way through a fit."""
        unknown = set(data) - KEYS
        if unknown:
            raise OverridesError(f"{where}: unknown overrides key(s) {sorted(unknown)}; allowed: {sorted(KEYS)}")
        misplaced = sorted(set(_table(data, "facets", where)) & KEYS)
        if misplaced:
            raise OverridesError(f"{where}: {misplaced[0]!r} is inside the [facets] table; top-level keys such as "
                                 f"{misplaced[0]} must come before the first [table] of the file")
        return cls(
            delete=_names(data.get("delete", []), f"{where}: delete", "label names"),
            rename={key: _name(new, f"{where}: [rename] {key!r}", "the label's new name")
                    for key, new in _table(data, "rename", where).items()},
            merge={key: _names(names, f"{where}: [merge] {key!r}", "the labels or terms to merge into it")
                   for key, names in _table(data, "merge", where).items()},
            add={key: _names(terms, f"{where}: [add] {key!r}", "the terms of the new label", least=1)
                 for key, terms in _table(data, "add", where).items()},
            facets={key: _names(names, f"{where}: [facets] {key!r}", "the labels of the facet", least=1)
                    for key, names in _table(data, "facets", where).items()},
            unfaceted=_names(data.get("unfaceted", []), f"{where}: unfaceted", "label names"),
        )

    def facet_seeds(self, labels: pd.DataFrame, terms: pd.DataFrame) -> tuple[dict[str, list[int]], set[int]]:
        """The ``[facets]`` seeds as label ids per facet name, and the ``unfaceted`` label ids, resolved
        against the final vocabulary; a label named in two seeds, or in a seed and ``unfaceted``, is an error."""
        table = _final_term_table(labels, terms)
        seeds = {name: sorted({self._resolve(table, label) for label in names}) for name, names in self.facets.items()}
        unfaceted = {self._resolve(table, label) for label in self.unfaceted}
        named: dict[int, str] = {}
        for facet, ids in seeds.items():
            for label in ids:
                if label in named or label in unfaceted:
                    other = f"[facets] {named[label]!r}" if label in named else "unfaceted"
                    raise OverridesError(f"overrides: label {labels['name'].iloc[label]!r} is named both by "
                                         f"[facets] {facet!r} and by {other}; a label is in one facet at most")
                named[label] = facet
        return seeds, unfaceted

    def names_facets(self) -> bool:
        return bool(self.facets or self.unfaceted)

    def added_terms(self) -> set[str]:
        """Terms named in ``add``: they bypass the candidate filters."""
        return {as_term(t) for terms in self.add.values() for t in terms}

    def apply(self, assignment: pd.DataFrame, support: pd.Series) -> pd.DataFrame:
        """Apply the edits to a term table (term, support, label, how, similarity).

        Returns a copy with an extra ``display_name`` column (set where a label was named by
        the user) and rows appended for added terms that were not candidates.
        """
        table = assignment.copy()
        table["display_name"] = None
        next_label = int(table["label"].max()) + 1 if len(table) else 0
        for name, terms in self.add.items():
            table = self._add(table, name, [as_term(t) for t in terms], next_label, support)
            next_label += 1
        for target, sources in self.merge.items():
            table, into = self._label_or_pulled_in(table, target, support, next_label)
            next_label += 1
            name = self._name_of(table, into)
            for source in sources:
                table, label = self._label_or_pulled_in(table, source, support, next_label)
                next_label += 1
                table.loc[table["label"] == label, ["label", "how"]] = [into, "merged"]
            table.loc[table["label"] == into, "display_name"] = name  # even if a source was more frequent
        for name in self.delete:
            rows = table["label"] == self._resolve(table, name)
            table.loc[rows, ["label", "how"]] = [-1, "deleted"]
        for old, new in self.rename.items():
            table.loc[table["label"] == self._resolve(table, old), "display_name"] = new
        return table

    @staticmethod
    def _add(table: pd.DataFrame, name: str, terms: list[str], label: int, support: pd.Series) -> pd.DataFrame:
        present = table["term"].isin(terms)
        table.loc[present, ["label", "how", "similarity"]] = [label, "override", 1.0]
        missing = [t for t in terms if t not in set(table["term"])]
        absent = [t for t in missing if not support.get(t, 0)]
        if absent:
            raise OverridesError(f"overrides [add] {name!r}: {no_terms_message(absent)}")
        extra = pd.DataFrame({"term": missing, "support": [int(support[t]) for t in missing],
                              "label": label, "how": "override", "similarity": 1.0})
        table = pd.concat([table, extra], ignore_index=True) if missing else table
        table.loc[table["label"] == label, "display_name"] = name
        return table

    @classmethod
    def _label_or_pulled_in(cls, table: pd.DataFrame, name: str, support: pd.Series,
                            new_label: int) -> tuple[pd.DataFrame, int]:
        """The label ``name`` refers to. A term of the listings in no label (dropped as rare, by npmi, ...)
        is pulled in with its support as a label of its own, numbered ``new_label``: the user named it."""
        key = as_term(name)
        if cls._names_a_label(table, name) or not support.get(key, 0):
            return table, cls._resolve(table, name)
        present = table["term"] == key
        if present.any():
            table.loc[present, ["label", "how", "similarity"]] = [new_label, "override", 1.0]
            return table, new_label
        row = pd.DataFrame({"term": [key], "support": [int(support[key])], "label": new_label, "how": "override",
                            "similarity": 1.0, "display_name": None})
        return pd.concat([table, row], ignore_index=True), new_label

    @staticmethod
    def _names_a_label(table: pd.DataFrame, name: str) -> bool:
        return bool((table["display_name"] == name).any()
                    or ((table["term"] == as_term(name)) & (table["label"] >= 0)).any())

    @staticmethod
    def _name_of(table: pd.DataFrame, label: int) -> str:
        """A label's name as it stands: the one given by an override, else its most frequent term."""
        rows = table[table["label"] == label]
        given = rows["display_name"].dropna()
        if len(given):
            return str(given.iloc[0])
        return str(most_frequent_first(rows)["term"].iloc[0])

    @staticmethod
    def _resolve(table: pd.DataFrame, name: str) -> int:
        """The label that a name (a label's name or any of its terms) refers to."""
        key = as_term(name)
        named = table["display_name"] == name
        if named.any():
            return int(table.loc[named, "label"].iloc[0])
        rows = table[(table["term"] == key) & (table["label"] >= 0)]
        if len(rows):
            return int(rows["label"].iloc[0])
        known = table.loc[table["label"] >= 0, "term"].tolist()
        close = difflib.get_close_matches(key, known, n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise OverridesError(f"overrides name {name!r}, which is no label or labelled term of this vocabulary{hint}")


def _final_term_table(labels: pd.DataFrame, terms: pd.DataFrame) -> pd.DataFrame:
    """A fitted vocabulary's terms in the shape ``_resolve`` reads: each label's name and terms."""
    kept = terms[terms["label_id"].notna()].drop_duplicates("term")
    table = pd.DataFrame({"term": kept["term"].to_numpy(), "label": kept["label_id"].astype(int).to_numpy(),
                          "display_name": None})
    names = pd.DataFrame({"term": labels["name"].to_numpy(), "label": labels["label_id"].to_numpy(int),
                          "display_name": labels["name"].to_numpy()})
    return pd.concat([names, table], ignore_index=True)


def no_terms_message(absent: list[str]) -> str:
    """Why terms a user named (to add or allow) are not terms of the listings."""
    verb = "is no term" if len(absent) == 1 else "are no terms"
    return (f"{', '.join(map(repr, absent))} {verb} of the listings: it occurs in none, or is longer than "
            "ngram_range, or holds a stopword or a number or code")


def most_frequent_first(terms: pd.DataFrame) -> pd.DataFrame:
    """Terms by support, descending, then alphabetically: a label is named after its first."""
    return terms.sort_values(["support", "term"], ascending=[False, True])


def _table(data: dict, key: str, where: str) -> dict[str, object]:
    """The table ``key`` of the overrides; its keys must name something."""
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise OverridesError(f"{where}: {key} = {table!r} should be a table: [{key}] and then \"name\" = ... lines")
    if any(not name.strip() for name in table):
        raise OverridesError(f'{where}: [{key}] has an empty name ("" = ...): name a label or a term')
    return table


def _name(value: object, what: str, expected: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise OverridesError(f"{what} = {value!r}: expected {expected}, a non-empty string")
    return value


def _names(value: object, what: str, expected: str, least: int = 0) -> list[str]:
    """A string or a list of at least ``least`` strings, as a list."""
    values = [value] if isinstance(value, str) else value
    if (not isinstance(values, list) or len(values) < least
            or not all(isinstance(v, str) and v.strip() for v in values)):
        some = "a non-empty list" if least else "a list"
        raise OverridesError(f"{what} = {value!r}: expected {expected}, a non-empty string or {some} of them")
    return values
