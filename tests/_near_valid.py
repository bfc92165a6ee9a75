"""Hypothesis strategies for documents near a valid one: the exact checks of llmcc.yaml and
policy files are compared with their pydantic models on them (issue 14 §1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st


def often(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``good``, now and then ``bad``: most examples are near a valid document."""
    return st.integers(0, 11).flatmap(lambda i: bad if i == 0 else good)


@dataclass(frozen=True)
class Shapes:
    """Strategies built from one vocabulary: ``atom`` (a scalar) and ``junk`` (anything ill-shaped)."""

    atom: st.SearchStrategy[Any]
    junk: st.SearchStrategy[Any]

    def mapping(self, required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[Any]:
        """A mapping of these fields (now and then one missing, one unknown, or not a mapping at all)."""
        shaped = st.fixed_dictionaries(required, optional=optional)
        odd = st.one_of(
            st.fixed_dictionaries(required, optional={**optional, "bogus": self.atom}),
            st.fixed_dictionaries({}, optional={**required, **optional}),
            self.junk,
        )
        return often(shaped, odd)

    def field_value(self, choices: list[str]) -> st.SearchStrategy[Any]:
        return often(st.sampled_from(choices), self.atom)
