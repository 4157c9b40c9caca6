"""Comment markers and bug heuristics found by tree-sitter, per language, with exact lines."""

from __future__ import annotations

import textwrap

import pytest

from pieces_integration.adapters.code_analysis import TreeSitterCodeAnalyzer
from pieces_integration.domain.code_findings import (
    Finding,
    FindingKind,
    fingerprint,
    is_secret_name,
    looks_like_secret,
    markers_in_comment,
    suggestion_for,
)

K = FindingKind
analyzer = TreeSitterCodeAnalyzer()


def kinds(code: str, language: str) -> list[tuple[FindingKind, int]]:
    return [(f.kind, f.line) for f in analyzer.analyze(textwrap.dedent(code), language)]


def test_python_markers_only_in_real_comments() -> None:
    code = '''\
        # TODO: cache the result
        def f():
            """TODO: this is a docstring, not a comment"""
            s = "# FIXME not a comment either"
            return s  # FIXME(ana): wrong when empty
        # see the TODO list in the wiki
        # hack: lower-case prose is not a marker
        # XXX - revisit
        '''
    findings = analyzer.analyze(textwrap.dedent(code), "python")
    assert [(f.kind, f.line, f.text) for f in findings] == [
        (K.TODO, 1, "cache the result"),
        (K.FIXME, 5, "wrong when empty"),
        (K.XXX, 8, "revisit"),
    ]


def test_javascript_block_comment_markers_get_their_own_lines() -> None:
    code = """\
        /*
         * TODO: paginate
         * FIXME: off by one
         */
        const url = "http://x/* TODO no */";
        // HACK: until the API is fixed
        """
    findings = analyzer.analyze(textwrap.dedent(code), "javascript")
    assert [(f.kind, f.line, f.text) for f in findings] == [
        (K.TODO, 2, "paginate"),
        (K.FIXME, 3, "off by one"),
        (K.HACK, 6, "until the API is fixed"),
    ]


def test_python_bug_heuristics() -> None:
    code = """\
        import os
        API_KEY = "sk-live-abcdefghijklmnopqrstuv"
        password = os.environ["PASSWORD"]
        def handler(items=[], *, token: str = "placeholder"):
            try:
                eval(input("> "))
                eval("1 + 1")
            except:
                pass
            try:
                exec(payload)
            except ValueError:
                pass  # expected when empty
            if items == None or items is None:
                raise Exception()
            raise ValueError("with a message")
        """
    assert kinds(code, "python") == [
        (K.HARDCODED_SECRET, 2),
        (K.MUTABLE_DEFAULT, 4),
        (K.EVAL_DYNAMIC, 6),
        (K.BARE_EXCEPT, 8),
        (K.EMPTY_CATCH, 8),
        (K.EVAL_DYNAMIC, 11),
        (K.NONE_EQUALITY, 14),
        (K.GENERIC_ERROR, 15),
    ]


def test_javascript_bug_heuristics() -> None:
    code = """\
        const apiKey = "AKIAABCDEFGHIJKLMNOP";
        const label = "password";
        function f(a, b) {
          console.log(a);
          if (a == b) {}
          if (a == null) {}
          if (a === b) {}
          try { g(); } catch (e) {}
          try { g(); } catch (e) { /* ignored on purpose */ }
          eval(userInput);
          eval("2 + 2");
          const s = "console.log(x) and eval(y) in a string";
          throw new Error();
        }
        function h() { throw "boom"; }
        function k() { throw new Error("clear message"); }
        """
    assert kinds(code, "javascript") == [
        (K.HARDCODED_SECRET, 1),
        (K.CONSOLE_LOG, 4),
        (K.LOOSE_EQUALITY, 5),
        (K.EMPTY_CATCH, 8),
        (K.EVAL_DYNAMIC, 10),
        (K.GENERIC_ERROR, 13),
        (K.GENERIC_ERROR, 15),
    ]


def test_typescript_with_types_and_class_fields() -> None:
    code = """\
        class Client {
          private secret: string = "s3cr3t-value-123";
          // TODO: retry on 429
          async get(id: number): Promise<void> {
            if (id != 0) { console.log(id); }
          }
        }
        """
    assert kinds(code, "typescript") == [
        (K.HARDCODED_SECRET, 2),
        (K.TODO, 3),
        (K.CONSOLE_LOG, 5),
        (K.LOOSE_EQUALITY, 5),
    ]


def test_go_heuristics() -> None:
    code = """\
        package main

        // TODO: close the file
        const apiToken = "abcdef0123456789"

        func run() error {
            f, err := open()
            if err != nil {
            }
            cfg := Config{Password: "hunter2hunter2"}
            _ = cfg
            return errors.New("")
        }
        """
    assert kinds(code, "go") == [
        (K.TODO, 3),
        (K.HARDCODED_SECRET, 4),
        (K.EMPTY_CATCH, 8),
        (K.HARDCODED_SECRET, 10),
        (K.GENERIC_ERROR, 12),
    ]


def test_secret_text_is_redacted_in_findings() -> None:
    [finding] = analyzer.analyze('DB_PASSWORD = "correct-horse-battery"\n', "python")
    assert "correct-horse" not in finding.text and '"***"' in finding.text


def test_unsupported_or_unparsable_input() -> None:
    assert analyzer.analyze("# TODO: x", "cobol") == []
    assert analyzer.analyze("", "python") == []
    assert not analyzer.supports(None)
    # A syntax error still yields the comments tree-sitter recovers around it.
    assert [f.kind for f in analyzer.analyze("def (:\n# TODO: fix syntax\n", "py")] == [K.TODO]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("API_KEY", True),
        ("apiKey", True),
        ("db_password", True),
        ("clientSecret", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("max_tokens", False),
        ("token_url", False),
        ("password_field", False),
        ("tokenizer", False),
    ],
)
def test_secret_names(name: str, expected: bool) -> None:
    assert is_secret_name(name) is expected


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("password", "hunter2hunter2", True),
        ("password", "changeme", False),
        ("password", "<your password>", False),
        ("api_key", "${API_KEY}", False),
        ("token", "short", False),
        (None, "ghp_" + "a" * 36, True),
        ("greeting", "hello world and more", False),
    ],
)
def test_secret_values(name: str | None, value: str, expected: bool) -> None:
    assert looks_like_secret(name, value) is expected


def test_markers_in_comment_lines_and_owner_syntax() -> None:
    assert markers_in_comment("// TODO(bob): a", 7) == [Finding(K.TODO, 7, "a")]
    assert markers_in_comment("/** todo lower case still counts */", 1) == [
        Finding(K.TODO, 1, "lower case still counts")
    ]


def test_fingerprint_is_stable_and_specific() -> None:
    a = Finding(K.TODO, 3, "Cache  the result")
    assert fingerprint("asset-1", a) == fingerprint(
        "asset-1", Finding(K.TODO, 3, "cache the result")
    )
    assert fingerprint("asset-1", a) != fingerprint("asset-2", a)
    assert fingerprint("asset-1", a) != fingerprint(
        "asset-1", Finding(K.TODO, 4, "cache the result")
    )
    assert fingerprint("asset-1", a) != fingerprint(
        "asset-1", Finding(K.FIXME, 3, "cache the result")
    )


def test_suggestions_follow_spec_shape() -> None:
    todo = suggestion_for("a1", "utils.py", Finding(K.TODO, 3, "cache"))
    assert (todo.type, todo.title, todo.description, todo.priority, todo.source) == (
        "task",
        "TODO: cache",
        "From utils.py, line 3",
        "medium",
        "a1",
    )
    bug = suggestion_for("a1", "app.js", Finding(K.CONSOLE_LOG, 9, "console.log(x)"))
    assert (bug.type, bug.title, bug.priority) == (
        "issue",
        "Potential Issue: Console.log statement in production code",
        "high",
    )
    assert bug.description == "In app.js, line 9: console.log(x)"
    assert len(bug.fingerprint) == 64
