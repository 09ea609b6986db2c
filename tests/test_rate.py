"""Tests for rate parsing and the number checks shared by the limiters."""

from __future__ import annotations

import decimal
import fractions
import math

import pytest

from syncq.limiters._rate import ParsedRate, parse_rate


class TestParseRateString:
    @pytest.mark.parametrize(
        ("rate", "per_second", "limit", "period"),
        [
            ("5/s", 5.0, 5.0, 1.0),
            ("100/min", 100 / 60, 100.0, 60.0),
            ("60/h", 60 / 3600, 60.0, 3600.0),
            ("1000/d", 1000 / 86400, 1000.0, 86400.0),
            ("5/second", 5.0, 5.0, 1.0),
            ("100/minute", 100 / 60, 100.0, 60.0),
            ("60/hour", 60 / 3600, 60.0, 3600.0),
            ("10/day", 10 / 86400, 10.0, 86400.0),
            ("10/sec", 10.0, 10.0, 1.0),
            ("10/seconds", 10.0, 10.0, 1.0),
            ("30/m", 0.5, 30.0, 60.0),
            ("2/hours", 2 / 3600, 2.0, 3600.0),
            ("7/hr", 7 / 3600, 7.0, 3600.0),
            ("3/days", 3 / 86400, 3.0, 86400.0),
            ("1.5/s", 1.5, 1.5, 1.0),
        ],
    )
    def test_parse_rate_units(
        self, rate: str, per_second: float, limit: float, period: float
    ) -> None:
        parsed = parse_rate(rate)

        assert parsed.per_second == pytest.approx(per_second)
        assert parsed.limit == limit
        assert parsed.period == period

    @pytest.mark.parametrize(
        ("rate", "per_second", "limit", "period"),
        [
            ("100/15min", 100 / 900, 100.0, 900.0),
            ("3/2s", 1.5, 3.0, 2.0),
            ("10/2.5s", 4.0, 10.0, 2.5),
            ("100/15 min", 100 / 900, 100.0, 900.0),
            ("1/1h", 1 / 3600, 1.0, 3600.0),
        ],
    )
    def test_parse_rate_multiplier(
        self, rate: str, per_second: float, limit: float, period: float
    ) -> None:
        parsed = parse_rate(rate)

        assert parsed.per_second == pytest.approx(per_second)
        assert parsed.limit == limit
        assert parsed.period == period

    @pytest.mark.parametrize("rate", ["  5/s", "5/s  ", "\t5/s\n", "5 / s", "5/ s"])
    def test_parse_rate_allows_spaces(self, rate: str) -> None:
        assert parse_rate(rate) == ParsedRate(5.0, 5.0, 1.0)

    @pytest.mark.parametrize("rate", ["5/S", "5/Sec", "100/MIN", "60/Hour", "1/DAY"])
    def test_parse_rate_unit_is_case_insensitive(self, rate: str) -> None:
        assert parse_rate(rate) == parse_rate(rate.lower())

    def test_parse_rate_returns_floats(self) -> None:
        parsed = parse_rate("5/s")

        assert type(parsed.per_second) is float
        assert type(parsed.limit) is float
        assert type(parsed.period) is float


class TestParseRateNumber:
    @pytest.mark.parametrize(
        ("rate", "per_second"),
        [(5, 5.0), (0.5, 0.5), (1e-6, 1e-6), (fractions.Fraction(1, 4), 0.25)],
    )
    def test_parse_rate_number_is_per_second(
        self, rate: float, per_second: float
    ) -> None:
        assert parse_rate(rate) == ParsedRate(per_second, None, None)

    def test_parse_rate_int_becomes_float(self) -> None:
        assert type(parse_rate(5).per_second) is float


class TestParseRateRejects:
    @pytest.mark.parametrize(
        "rate",
        [
            0,
            0.0,
            -1,
            -0.5,
            math.nan,
            math.inf,
            -math.inf,
            "0/s",
            "0.0/min",
            "-5/s",
            "5/0s",
            "5/0min",
            "",
            "   ",
            "abc",
            "5",
            "5/",
            "/s",
            "5/s/s",
            "5 per second",
            "1e3/s",
            "five/s",
            "5/fortnight",
            "5/ms",
            "5/2",
            "9" * 400 + "/s",
            "1/" + "9" * 400 + "d",
            10**400,
        ],
    )
    def test_parse_rate_rejects_invalid_value(self, rate: object) -> None:
        with pytest.raises(ValueError, match="rate"):
            parse_rate(rate)

    @pytest.mark.parametrize(
        "rate",
        [True, False, None, [5], b"5/s", complex(5, 0), decimal.Decimal("5")],
    )
    def test_parse_rate_rejects_wrong_type(self, rate: object) -> None:
        with pytest.raises(TypeError, match="rate"):
            parse_rate(rate)

    def test_parse_rate_error_names_unknown_unit(self) -> None:
        with pytest.raises(ValueError, match="unknown unit 'fortnight'"):
            parse_rate("5/fortnight")

    def test_parse_rate_error_shows_value(self) -> None:
        with pytest.raises(ValueError, match="'5 per second'"):
            parse_rate("5 per second")

    def test_parse_rate_error_lists_accepted_forms(self) -> None:
        with pytest.raises(ValueError, match=r"'5/s', '100/min', '60/h'"):
            parse_rate("abc")

    def test_parse_rate_number_error_shows_value(self) -> None:
        with pytest.raises(ValueError, match="got -2"):
            parse_rate(-2)

    def test_parse_rate_type_error_names_type(self) -> None:
        with pytest.raises(TypeError, match="got bool True"):
            parse_rate(True)
