"""The shop's JSON columns through orjson: the same values back as the standard library gives, including what
orjson alone would refuse or read inexactly."""

from __future__ import annotations

import json

import pytest

from regionctl.shop.kit import jsoncodec

SAMPLES = [
    {"items": [{"itemId": "w-1", "quantity": 2, "unitPrice": 4999}], "note": "caf\u00e9 \u2615", "ok": True},
    {"big": 123456789012345678901234567890, "neg": -98765432109876543210, "max": 9223372036854775807},
    {"fraction": 0.1234567890123456789012, "tiny": 5e-324, "list": [None, 1.5, "x"]},
    [], "text", 0,
]


@pytest.mark.parametrize("value", SAMPLES)
def test_values_read_back_exactly_as_the_standard_library_reads_them(value: object) -> None:
    written = jsoncodec.dumps(value)
    assert json.loads(written) == value
    for data in (written, written.decode() if isinstance(written, bytes) else written.encode()):
        back = jsoncodec.loads(data)
        assert back == json.loads(data) == value
        assert type(back) is type(value)


def test_an_integer_beyond_64_bits_is_written_and_read_as_an_integer() -> None:
    assert jsoncodec.dumps({"n": 2**70}) == '{"n": 1180591620717411303424}'  # orjson refuses it: json writes it
    assert jsoncodec.loads(b'{"n": 1180591620717411303424}') == {"n": 2**70}  # orjson would read a float


def test_broken_json_is_an_error_as_before() -> None:
    with pytest.raises(json.JSONDecodeError):
        jsoncodec.loads(b'{"n": ')
