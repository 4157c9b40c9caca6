from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pieces_integration.domain.hlc import HybridLogicalClock, Timestamp


def test_ticks_increase_even_when_the_wall_clock_goes_back() -> None:
    clock = HybridLogicalClock("a")
    first = clock.tick(1000)
    second = clock.tick(900)  # clock stepped back
    third = clock.tick(1000)
    assert first < second < third


def test_receive_orders_after_a_remote_stamp_from_a_fast_clock() -> None:
    ours = HybridLogicalClock("a")
    remote = Timestamp(5000, 3, "b")
    merged = ours.receive(remote, now_millis=1000)
    assert merged > remote
    assert ours.tick(1001) > merged


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=50))
def test_encoded_stamps_sort_like_the_stamps(nows: list[int]) -> None:
    clock = HybridLogicalClock("n1")
    stamps = [clock.tick(now) for now in nows]
    assert stamps == sorted(stamps)
    assert [s.encode() for s in stamps] == sorted(s.encode() for s in stamps)
    assert all(Timestamp.decode(s.encode()) == s for s in stamps)
