"""Hypothesis strategies for the merkle tests: tree sizes, index/size pairs, note texts, names."""

from __future__ import annotations

from hypothesis import strategies as st

MAX_TREE_SIZE = 4096
"""The largest tree the property tests build (the shared reference tree's size)."""


def tree_sizes(min_size: int = 0, max_size: int = MAX_TREE_SIZE) -> st.SearchStrategy[int]:
    """Tree sizes, biased towards powers of two and their neighbours where bugs live."""
    near_powers = sorted(
        {n for e in range(max_size.bit_length()) for n in ((1 << e) - 1, 1 << e, (1 << e) + 1)}
    )
    edges = [n for n in near_powers if min_size <= n <= max_size]
    anywhere = st.integers(min_size, max_size)
    return st.one_of(anywhere, st.sampled_from(edges)) if edges else anywhere


@st.composite
def index_and_size(draw: st.DrawFn, max_size: int = MAX_TREE_SIZE) -> tuple[int, int]:
    """A leaf index and a tree size with ``0 <= index < size``."""
    size = draw(tree_sizes(1, max_size))
    index = draw(st.one_of(st.integers(0, size - 1), st.sampled_from([0, size - 1])))
    return index, size


@st.composite
def size_pairs(draw: st.DrawFn, max_size: int = MAX_TREE_SIZE) -> tuple[int, int]:
    """Two tree sizes with ``0 <= size1 <= size2``."""
    size2 = draw(tree_sizes(0, max_size))
    size1 = draw(st.one_of(tree_sizes(0, size2), st.sampled_from([0, size2])))
    return size1, size2


def key_names() -> st.SearchStrategy[str]:
    """Valid note key names: non-empty, no spaces, no ``+``, no control characters."""
    return st.text(
        st.characters(
            blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"),
            blacklist_characters="+\x85\u180e\u200b\ufeff",
        ),
        min_size=1,
        max_size=40,
    ).filter(lambda s: not any(ch.isspace() for ch in s))


def note_texts() -> st.SearchStrategy[str]:
    """Valid note texts: any non-control text, blank lines included, ending in a newline."""
    line = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=60)
    return st.lists(line, min_size=1, max_size=6).map(lambda lines: "\n".join(lines) + "\n")


def checkpoint_lines() -> st.SearchStrategy[str]:
    """Non-empty lines without control characters: origins and extension lines."""
    return st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)
