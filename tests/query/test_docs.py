"""docs/search.md stays true: its examples parse and its error table is what the parser says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trailkeep.query.errors import QuerySyntaxError
from trailkeep.query.filters import FILTER_COLUMNS
from trailkeep.query.parser import parse

DOC = (Path(__file__).resolve().parents[2] / "docs" / "search.md").read_text()


def _examples() -> list[str]:
    blocks = re.findall(r"```search\n(.*?)```", DOC, re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.strip() and not line.startswith("#")]


def _error_rows() -> list[tuple[str, str]]:
    return re.findall(r"^\| `(.+)` \| `(at position .+)` \|$", DOC, re.MULTILINE)


class TestSearchDocs:
    """Every documented query parses; every documented error is the one raised."""

    @pytest.mark.parametrize("query", _examples())
    def test_example_parses(self, query: str) -> None:
        parse(query)

    @pytest.mark.parametrize(("query", "message"), _error_rows())
    def test_error_row(self, query: str, message: str) -> None:
        with pytest.raises(QuerySyntaxError) as info:
            parse(query)
        assert info.value.message == message

    def test_has_examples_and_errors(self) -> None:
        assert len(_examples()) >= 40
        assert len(_error_rows()) >= 10

    @pytest.mark.parametrize("field", sorted(FILTER_COLUMNS))
    def test_filter_fields_documented(self, field: str) -> None:
        assert f"`{field}`" in DOC
