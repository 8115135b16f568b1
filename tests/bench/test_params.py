import pytest

from bench import Param, ParamError


@pytest.mark.parametrize(
    "param, value, expected",
    [
        (Param(0.1), 1, 1.0),  # an int is a float
        (Param(0.1), "1e-3", 1e-3),  # YAML 1.1 reads 1e-3 as a string
        (Param(3), 4.0, 4),
        (Param(True), False, False),
        (Param("a", choices=["a", "b"]), "b", "b"),
        (Param([16, 16]), (8, 8), [8, 8]),
        (Param(None, type=float), None, None),
    ],
)
def test_valid_values_are_coerced(param, value, expected):
    assert param.validate(value) == expected
    assert type(param.validate(value)) is type(expected)


@pytest.mark.parametrize(
    "param, value, message",
    [
        (Param(0.1), "fast", "expected a number, got 'fast'"),
        (Param(0.1), True, "expected a number, got True"),
        (Param(3), 2.5, "expected an integer, got 2.5"),
        (Param(True), "yes", "expected true or false, got 'yes'"),
        (Param("a"), 3, "expected a string, got 3"),
        (Param("a", choices=["a", "b"]), "c", "'c' is not one of 'a', 'b'"),
        (Param(0.1, low=0.0, low_open=True), 0.0, "must be > 0.0, got 0.0"),
        (Param(1, low=1), 0, "must be >= 1, got 0"),
        (Param(1, high=10), 11, "must be <= 10, got 11"),
        (Param(0.5), float("nan"), "must be a number, got NaN"),
        (Param(0.5), "nan", "must be a number, got NaN"),
        # issue 23: +inf passed validation (then the cell ended diverged or ran forever)
        (Param(0.5), float("inf"), "must be a finite number, got inf"),
        (Param(0.5, low=0.0), "-inf", "must be a finite number, got -inf"),
        pytest.param(
            Param(0.5),
            10**400,
            "must be a finite number, got 1" + "0" * 17 + "..." + "0" * 19,
            id="10**400",
        ),
        (Param(0.5), None, "must not be null (expected float)"),
        (
            Param([1], check=lambda v: None if len(v) < 4 else f"{len(v)} entries, not 2 or 3"),
            [1, 2, 3, 4],
            "4 entries, not 2 or 3",
        ),
    ],
)
def test_invalid_values_say_what_and_why(param, value, message):
    with pytest.raises(ParamError) as info:
        param.validate(value)
    assert str(info.value) == message


def test_a_float_that_declares_it_may_be_infinite_takes_inf():
    assert Param(1.0, finite=False).validate(float("inf")) == float("inf")
    assert Param(1.0, finite=False).validate("-inf") == float("-inf")
    with pytest.raises(ParamError, match="NaN"):
        Param(1.0, finite=False).validate(float("nan"))


def test_describe_lists_type_default_and_range():
    assert Param(0.1, low=0.0, low_open=True).describe() == "float = 0.1, 0.0<x"
    assert Param("a", choices=["a", "b"]).describe() == "str = 'a', one of a|b"
