"""ItemIds: the catalogue's ids in row order with id -> row lookups, kept in arrays, not a dict."""

import pytest

from recommender.ml.item_ids import ItemIds


def test_rows_are_found_for_known_ids_and_zero_for_unknown_ones():
    ids = ItemIds(["b", "a", "12", "1", "été", "a-much-longer-id"])
    assert ids.rows(["a", "1", "12", "été", "a-much-longer-id", "b"]).tolist() == [2, 4, 3, 5, 6, 1]
    # a prefix, a longer id than any stored (it would be cut to fit), a missing one
    assert ids.rows(["12 ", "a-much-longer-id-still", "zz", "", "ét"]).tolist() == [0, 0, 0, 0, 0]
    assert ids.row("été") == 5 and ids.row("nope") is None
    assert "b" in ids and "c" not in ids and 3 not in ids


def test_ids_that_byte_strings_cannot_hold_are_kept_apart_and_still_found():
    ids = ItemIds(["x", "", "x\0", "y"])  # numpy byte strings drop trailing NULs: "x\0" would read as "x"
    assert ids.rows(["x", "", "x\0", "y"]).tolist() == [1, 2, 3, 4]
    assert list(ids) == ["x", "", "x\0", "y"]
    assert ids[1] == "" and ids[2] == "x\0"


def test_the_sequence_is_the_ids_in_row_order():
    listed = [str(n) for n in range(50, 0, -1)]
    ids = ItemIds(listed)
    assert len(ids) == 50 and list(ids) == listed and ids == listed
    assert ids[0] == "50" and ids[-1] == "1" and ids[2:5] == ["48", "47", "46"]
    with pytest.raises(IndexError):
        ids[50]
    assert all(ids.row(i) == n + 1 for n, i in enumerate(listed))


def test_extended_ids_share_the_arrays_and_leave_the_original_as_it_was():
    ids = ItemIds(["a", "b"])
    grown = ids.extended(["c", "a-new-one"])
    assert list(grown) == ["a", "b", "c", "a-new-one"] and list(ids) == ["a", "b"]
    assert grown.rows(["a-new-one", "c", "b"]).tolist() == [4, 3, 2]
    assert "c" not in ids and ids.row("c") is None
    assert grown._sorted is ids._sorted  # nothing copied
    again = grown.extended(["d"])
    assert again.row("d") == 5 and again.row("c") == 3 and grown.row("d") is None


def test_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="unique"):
        ItemIds(["a", "b", "a"])
