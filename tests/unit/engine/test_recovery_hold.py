"""The team's recovery must hold (steady_state.Hold): a brief healthy moment is none."""
import pytest

from ansible_collections.opsdrill.drills.plugins.module_utils.steady_state import Hold, wait_until_held


def looks(hold, seq, start=100.0, every=5.0):
    """Feed (healthy, ...) looks every ``every`` s; the time the hold held, or None."""
    for index, healthy in enumerate(seq):
        if hold.observe(start + index * every, healthy):
            return start + index * every
    return None


def test_holds_after_hold_s_and_min_checks_and_is_dated_at_its_start():
    hold = Hold(60, 3)
    held_at = looks(hold, [False, True] + [True] * 12)
    assert held_at == 165.0  # healthy from 105, 60 s later
    assert hold.held and hold.since == 105.0 and hold.held_s == 60.0 and hold.checks == 13


def test_a_relapse_starts_again():
    hold = Hold(15, 3)
    # a restart's brief healthy moment (disk_space, memory_leaks), then the real fix
    assert looks(hold, [True, True, False, False, True, True, True, True]) == 135.0
    assert hold.since == 120.0 and hold.relapses == 1


@pytest.mark.parametrize("seq", [[True, True], [True, False, True, False, True]])
def test_never_held(seq):
    hold = Hold(10, 3)
    assert looks(hold, seq) is None and not hold.held


def test_min_checks_count_even_when_time_has_passed():
    hold = Hold(0, 3)
    assert looks(hold, [True, True, True], every=60) == 220.0


def wait(clock, healthy_at, begin_by, timeout_at, hold_s=15, start=100.0):
    """wait_until_held over a service healthy from ``healthy_at`` on (None: never), looked
    at every 5 s on the fake clock (conftest)."""
    clock.now = start
    hold = Hold(hold_s, 3)
    looks = []

    def look():
        looks.append(clock())
        return {"healthy": healthy_at is not None and clock() >= healthy_at}

    wait_until_held(look, hold, timeout_at, begin_by, 5, clock=clock, sleep=clock.sleep)
    return hold, looks


def test_a_recovery_begun_in_the_window_may_hold_after_it(clock):
    hold, looks = wait(clock, healthy_at=115, begin_by=120, timeout_at=135)
    assert hold.held and hold.since == 115 and looks[-1] == 130


def test_a_recovery_begun_after_the_window_does_not_count(clock):
    # healthy from 125: the window ended at 120 with no stretch under way (with a 5 s hold
    # it would hold by 135, inside timeout_at)
    hold, looks = wait(clock, healthy_at=125, begin_by=120, timeout_at=135, hold_s=5)
    assert not hold.held and hold.since is None and looks[-1] == 120


def test_never_healthy_ends_at_the_window(clock):
    hold, looks = wait(clock, healthy_at=None, begin_by=120, timeout_at=135)
    assert not hold.held and looks[-1] == 120
