from integrations.clock import utc_now
from integrations.stats import median, percentile


def test_percentile_is_an_observed_value_by_nearest_rank():
    values = [5, 1, 4, 2, 3]
    assert percentile(values, 50) == 3
    assert percentile(values, 95) == 5
    assert percentile(values, 0) == 1
    assert percentile(range(1, 21), 95) == 19
    assert percentile([], 50) is None


def test_the_clock_is_timezone_aware():
    assert utc_now().tzinfo is not None


def test_the_median_of_an_even_count_is_the_lower_middle_value():
    assert median([1200, 500, 800, 650]) == 650
    assert median([3, 1, 2]) == 2
    assert median([]) is None
