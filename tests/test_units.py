import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placer.units import (
    MAX_GBPS,
    MAX_HOURS,
    MAX_SIZE_GB,
    MAX_USD,
    format_duration,
    parse_bandwidth,
    parse_duration,
    parse_price,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "gb"),
    [("800GB", 800.0), ("1.5TB", 1500.0), ("512MiB", 0.536870912), ("2 tb", 2000.0),
     ("10", 10.0), (3, 3.0), (0.5, 0.5), ("1e3GB", 1000.0), ("1PB", 1e6)],
)
def test_parse_size(text: object, gb: float) -> None:
    assert parse_size(text) == pytest.approx(gb)


@pytest.mark.parametrize(
    ("text", "hours"),
    [("6h", 6.0), ("90m", 1.5), ("1h30m", 1.5), ("2d", 48.0), ("45 min", 0.75), ("3600s", 1.0),
     (2, 2.0), ("5h30m", 5.5)],
)
def test_parse_duration(text: object, hours: float) -> None:
    assert parse_duration(text) == pytest.approx(hours)


@pytest.mark.parametrize(("text", "usd"), [("$2.5/h", 2.5), ("2.5", 2.5), ("$50", 50.0),
                                           ("0.09 USD/GB", 0.09), (1, 1.0)])
def test_parse_price(text: object, usd: float) -> None:
    assert parse_price(text) == pytest.approx(usd)


def test_parse_bandwidth() -> None:
    assert parse_bandwidth("10Gbps") == 10.0
    assert parse_bandwidth("400Mbps") == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("parser", "text", "message"),
    [
        (parse_size, "-3GB", "size must not be negative, got '-3GB'"),
        (parse_size, -1, "size must not be negative, got -1"),
        (parse_size, "5 parsecs",
         "cannot read size '5 parsecs'; write it like '800GB', '1.5TB' or '512MiB'"),
        (parse_size, True, "size must be a number or a string like the examples, got True"),
        (parse_duration, "6 hours",
         "cannot read duration '6 hours'; write it like '6h', '90m' or '1h30m'"),
        (parse_duration, "-2h", "duration must not be negative, got '-2h'"),
        (parse_duration, "h", "cannot read duration 'h'; write it like '6h', '90m' or '1h30m'"),
        (parse_price, "$-1", "price must not be negative, got '$-1'"),
        (parse_price, "free", "cannot read price 'free'; write it like '$2.50/h' or '0.09'"),
        (parse_size, float("inf"), "size must be finite, got inf"),
    ],
)
def test_bad_quantities_say_what_to_write(parser, text, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parser(text)


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_size_round_trips_through_its_string_form(gb: float) -> None:
    assert math.isclose(parse_size(f"{gb!r}GB"), gb, rel_tol=1e-12)


@given(st.integers(min_value=0, max_value=10_000))
def test_format_duration_round_trips_whole_minutes(minutes: int) -> None:
    assert parse_duration(format_duration(minutes / 60)) == pytest.approx(minutes / 60)


# -- bounds (issue 9): what a real job, site or plan can be -----------------------------------


@pytest.mark.parametrize(
    ("parser", "text", "message"),
    [
        (parse_size, 1e308, "size must be at most 1,000,000,000 GB (1 EB), got 1e+308"),
        (parse_size, "2000PB", "size must be at most 1,000,000,000 GB (1 EB), got '2000PB'"),
        (parse_size, "1e400GB", "size must be at most 1,000,000,000 GB (1 EB), got '1e400GB'"),
        pytest.param(parse_size, 10**400, "size must be at most 1,000,000,000 GB (1 EB), got an "
                     "integer of about 1e400", id="huge-int"),
        pytest.param(parse_size, -(10**400), "size must not be negative, got an integer of about "
                     "1e400", id="huge-negative-int"),
        (parse_size, float("nan"), "size must be finite, got nan"),
        (parse_size, float("-inf"), "size must be finite, got -inf"),
        (parse_duration, "87601h", "duration must be at most 87,600 h (ten years), got '87601h'"),
        (parse_duration, float("inf"), "duration must be finite, got inf"),
        (parse_duration, "1e400h", "duration must be at most 87,600 h (ten years), got '1e400h'"),
        (parse_price, "$1e10", "price must be at most $1,000,000,000, got '$1e10'"),
        (parse_price, float("nan"), "price must be finite, got nan"),
        (parse_bandwidth, "2e6Gbps", "bandwidth must be at most 1,000,000 Gbps, got '2e6Gbps'"),
        (parse_bandwidth, float("inf"), "bandwidth must be finite, got inf"),
        pytest.param(parse_size, "9" * 400 + "GB", "size must be at most 1,000,000,000 GB "
                     "(1 EB), got '" + "9" * 36 + "...", id="long-text"),
    ],
)
def test_quantities_past_what_a_real_job_can_be_are_refused(  # type: ignore[no-untyped-def]
    parser, text, message
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parser(text)


@pytest.mark.parametrize(
    ("parser", "limit", "text"),
    [(parse_size, MAX_SIZE_GB, "1000000TB"), (parse_duration, MAX_HOURS, "3650d"),
     (parse_price, MAX_USD, "$1000000000"), (parse_bandwidth, MAX_GBPS, "1000Tbps")],
)
def test_the_bounds_themselves_are_accepted(parser, limit, text) -> None:  # type: ignore[no-untyped-def]
    assert parser(limit) == limit
    assert parser(text) == pytest.approx(limit)


def test_parsed_text_is_cached_but_errors_are_not() -> None:
    assert parse_duration("3h") == parse_duration("3h") == 3.0
    for _ in range(2):
        with pytest.raises(ValueError, match="cannot read duration"):
            parse_duration("3 hours")
