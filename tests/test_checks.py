"""Tests of the argument checks that every part shares."""

from __future__ import annotations

import fractions
import math

import pytest

from syncq._checks import (
    check_int,
    check_non_negative,
    check_positive,
    check_priority,
    check_timeout,
)

NOT_NUMBERS = [True, False, None, "1", [1], complex(1, 0)]


class TestCheckInt:
    def test_check_int_returns_value(self) -> None:
        assert check_int("workers", 3, minimum=1) == 3

    @pytest.mark.parametrize("value", [0, -1])
    def test_check_int_rejects_below_minimum(self, value: int) -> None:
        with pytest.raises(
            ValueError, match=rf"workers must be an int >= 1, got {value}"
        ):
            check_int("workers", value, minimum=1)

    @pytest.mark.parametrize("value", [1.0, math.nan, True, "2", None])
    def test_check_int_rejects_other_types(self, value: object) -> None:
        with pytest.raises(TypeError, match="workers must be an int"):
            check_int("workers", value, minimum=1)


class TestCheckPositive:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [(1, 1.0), (2.5, 2.5), (1e-300, 1e-300), (fractions.Fraction(3, 2), 1.5)],
    )
    def test_check_positive_returns_float(self, value: object, expected: float) -> None:
        result = check_positive("capacity", value)

        assert result == expected
        assert type(result) is float

    @pytest.mark.parametrize(
        "value", [0, 0.0, -0.0, -1, math.nan, math.inf, -math.inf, 10**400]
    )
    def test_check_positive_rejects_value(self, value: object) -> None:
        with pytest.raises(ValueError, match="capacity must be a positive finite"):
            check_positive("capacity", value)

    @pytest.mark.parametrize("value", NOT_NUMBERS)
    def test_check_positive_rejects_type(self, value: object) -> None:
        with pytest.raises(TypeError, match="capacity must be a positive finite"):
            check_positive("capacity", value)

    def test_check_positive_names_unit(self) -> None:
        with pytest.raises(ValueError, match="number of seconds, got -1"):
            check_positive("grace", -1, unit=" of seconds")


class TestCheckNonNegative:
    def test_check_non_negative_accepts_zero(self) -> None:
        assert check_non_negative("delay", 0) == 0.0

    @pytest.mark.parametrize("value", [-0.5, math.nan, math.inf])
    def test_check_non_negative_rejects_value(self, value: float) -> None:
        with pytest.raises(ValueError, match="delay must be a finite number >= 0"):
            check_non_negative("delay", value)

    @pytest.mark.parametrize("value", NOT_NUMBERS)
    def test_check_non_negative_rejects_type(self, value: object) -> None:
        with pytest.raises(TypeError, match="delay"):
            check_non_negative("delay", value)


class TestCheckTimeout:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [(None, None), (0, 0.0), (0.25, 0.25), (math.inf, None), (10**400, None)],
    )
    def test_check_timeout_returns_seconds(
        self, value: object, expected: float | None
    ) -> None:
        assert check_timeout("timeout", value) == expected

    @pytest.mark.parametrize("value", [-1, -math.inf, math.nan])
    def test_check_timeout_rejects_value(self, value: float) -> None:
        with pytest.raises(ValueError, match="timeout must be None or a number"):
            check_timeout("timeout", value)

    @pytest.mark.parametrize("value", [True, False, "1", [1]])
    def test_check_timeout_rejects_type(self, value: object) -> None:
        with pytest.raises(TypeError, match="timeout"):
            check_timeout("timeout", value)


class TestCheckPriority:
    @pytest.mark.parametrize("value", [0, -3, 2.5, math.inf, -math.inf])
    def test_check_priority_accepts_numbers(self, value: float) -> None:
        assert check_priority(value) == value

    def test_check_priority_rejects_nan(self) -> None:
        with pytest.raises(ValueError, match="NaN"):
            check_priority(math.nan)

    @pytest.mark.parametrize("value", [True, "1", None])
    def test_check_priority_rejects_type(self, value: object) -> None:
        with pytest.raises(TypeError, match="priority"):
            check_priority(value)
