"""The dialect: every detail in one place, documented in one table, settable from an address."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from memhw.dpe.bridge import BridgeOptions, parse_options, split_address
from memhw.dpe.dialect import Dialect

DOC = Path(__file__).resolve().parents[2] / "docs" / "dpe.md"


def test_the_assumptions_table_lists_every_dialect_field_once() -> None:
    text = DOC.read_text()
    table = text[text.index("## Assumptions"):]
    rows = re.findall(r"^\| `(\w+)` \|", table, flags=re.M)
    fields = [f.name for f in dataclasses.fields(Dialect)]
    assert sorted(rows) == sorted(fields)
    assert len(rows) == len(set(rows))


def test_the_doc_names_every_bridge_option() -> None:
    text = DOC.read_text()
    for f in dataclasses.fields(BridgeOptions):
        assert f"`{f.name}`" in text, f.name


def test_address_options_reach_dialect_and_bridge() -> None:
    url, port, query = split_address("dpe+socket://127.0.0.1:5025?reply_eol=lf&auto_gains=1,2&pre_read=yes")
    assert (url, port) == ("socket://127.0.0.1:5025", "127.0.0.1:5025")
    dialect, options = parse_options(query)
    assert dialect.reply_eol == "\n" and options.auto_gains == (1, 2) and options.pre_read is True
    assert split_address("dpe://COM3")[:2] == ("COM3", "COM3")


@pytest.mark.parametrize("query, message", [({"half_rows": "48"}, "half_rows"), ({"vmm_max_vectors": "0"}, "vmm"),
                                            ({"timeout": "0"}, "timeout"), ({"evidence": "1.5"}, "evidence"),
                                            ({"baudrate": "fast"}, "baudrate")])
def test_bad_dialects_and_options_are_refused(query, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_options(query)
