"""EpochSchedule: window arithmetic and the phase at every boundary, to the second."""

from conftest import Phase


def test_windows_follow_each_other(schedule, params):
    g = schedule.GENESIS()
    w = schedule.windows(3)
    start = g + 3 * params.epoch_length
    assert w == (
        start,
        start + 100,
        start + 120,
        start + 140,
        start + 160,
        start + 180,
    )
    assert schedule.settlementDelay() == 80


def test_phase_at_every_boundary(schedule, clock):
    """One second before a window ends it is still that window; at its end the next one starts."""
    g = clock.genesis
    expected = [
        (0, Phase.WORK),
        (99, Phase.WORK),
        (100, Phase.COMMIT_WORK),
        (119, Phase.COMMIT_WORK),
        (120, Phase.COMMIT_SCORES),
        (139, Phase.COMMIT_SCORES),
        (140, Phase.REVEAL_SCORES),
        (159, Phase.REVEAL_SCORES),
        (160, Phase.FINALIZE),
        (179, Phase.FINALIZE),
        (180, Phase.SETTLED),
    ]
    for offset, phase in expected:
        if offset:
            clock.goto(g + offset)
        assert schedule.phase(0) == phase, offset


def test_later_epochs_are_future_until_they_start(schedule, clock):
    assert schedule.phase(1) == Phase.FUTURE
    clock.goto(clock.genesis + 99)
    assert schedule.phase(1) == Phase.FUTURE
    clock.goto(clock.genesis + 100)
    assert schedule.phase(1) == Phase.WORK


def test_current_epoch_and_overlap_with_next_work_period(schedule, clock):
    assert schedule.currentEpoch() == 0
    clock.goto(clock.genesis + 99)
    assert schedule.currentEpoch() == 0
    # the windows of epoch 0 run during the work period of epoch 1
    clock.goto(clock.genesis + 100)
    assert schedule.currentEpoch() == 1
    assert schedule.phase(0) == Phase.COMMIT_WORK
    clock.goto(clock.genesis + 179)
    assert schedule.currentEpoch() == 1
    assert schedule.phase(0) == Phase.FINALIZE
    clock.goto(clock.genesis + 1234)
    assert schedule.currentEpoch() == 12


def test_clock_helper_agrees_with_the_contract(schedule, clock):
    for phase in (Phase.COMMIT_WORK, Phase.COMMIT_SCORES, Phase.REVEAL_SCORES, Phase.FINALIZE, Phase.SETTLED):
        clock.to_phase(2, phase)
        assert schedule.phase(2) == phase
        assert clock.epoch() == schedule.currentEpoch()
