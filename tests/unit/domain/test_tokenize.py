from __future__ import annotations

from pieces_integration.domain.tokenize import (
    humanise_identifier,
    semantic_text,
    split_identifier,
    tokenize,
)


def test_splits_snake_case_and_keeps_the_whole_identifier() -> None:
    assert tokenize("read_config_file") == ["read_config_file", "read", "config", "fil"]


def test_splits_camel_case_keeping_acronyms_together() -> None:
    assert split_identifier("parseHTTPResponse") == ["parse", "http", "response"]
    assert split_identifier("XMLHttpRequest2") == ["xml", "http", "request", "2"]
    assert split_identifier("__init__") == ["init"]


def test_lowercases_stems_and_drops_stop_words() -> None:
    assert tokenize("Returns the parsed Files of a directory") == ["pars", "fil", "directory"]
    assert set(tokenize("parse parses parsing")) == {"pars"}
    assert tokenize("def f(self): return None") == []


def test_query_and_code_meet_on_shared_terms() -> None:
    code = set(tokenize("def loadUserSettings(path):\n    return json.loads(path.read_text())"))
    query = set(tokenize("Load the settings of a user"))
    assert query <= code


def test_digits_survive_and_overlong_tokens_are_skipped() -> None:
    assert "2" in tokenize("base64_encode_v2")
    assert tokenize("a" * 100) == []


def test_semantic_text_spells_the_name_out() -> None:
    assert humanise_identifier("createSocket") == "create socket"
    assert semantic_text("read_config", "def read_config(): ...") == (
        "read config: def read_config(): ..."
    )
    assert semantic_text("", "body") == "body"
