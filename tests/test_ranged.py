"""The ranged source under the URL readers: whatever the order of planned fetches, read-aheads,
seeks and reads, a read returns the object's bytes, including across the pieces a held segment
is made of (the held tail and the read-ahead it continues into are kept apart, not joined)."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from envelope._ranged import RangedSource

SIZE = 300
DATA = bytes((i * 7 + i // 256) % 256 for i in range(SIZE))

offsets = st.integers(0, SIZE + 5)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("fetch"), offsets, offsets),
        st.tuples(st.just("ahead"), offsets, st.integers(0, 120)),
        st.tuples(st.just("read"), offsets, st.integers(0, 150)),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_reads_return_the_object_whatever_was_fetched_before(steps):
    source = RangedSource(io.BytesIO(DATA), SIZE, "object")
    try:
        for kind, at, count in steps:
            if kind == "fetch":
                source.fetch(at, count)
            elif kind == "ahead":
                source.fetch_ahead(at, count)
            else:
                source.seek(at)
                buffer = bytearray(count)
                got = source.readinto(buffer)
                assert bytes(buffer[:got]) == DATA[at : at + count]
    finally:
        source.close()


def test_a_segment_that_runs_into_the_read_ahead_reads_across_the_seam():
    source = RangedSource(io.BytesIO(DATA), SIZE, "object")
    try:
        source.fetch(0, 100)
        assert source.fetch_ahead(100, 100)
        source.fetch(90, 150)  # the held tail [90, 100) and the read-ahead [100, 200)
        fetched = source.fetched
        source.seek(95)
        assert source.read(100) == DATA[95:195]
        assert source.fetched == fetched == 200  # nothing fetched twice, nothing fetched for the read
    finally:
        source.close()
