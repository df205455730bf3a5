from integrations.clock import utc_now
from integrations.stats import percentile


def test_percentile_is_an_observed_value_by_nearest_rank():
    values = [5, 1, 4, 2, 3]
    assert percentile(values, 50) == 3
    assert percentile(values, 95) == 5
    assert percentile(values, 0) == 1
    assert percentile(range(1, 21), 95) == 19
    assert percentile([], 50) is None


def test_the_clock_is_timezone_aware():
    assert utc_now().tzinfo is not None
