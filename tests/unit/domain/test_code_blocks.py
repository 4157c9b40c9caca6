"""Code-block extraction on assistant messages with tricky Markdown (exact expected output)."""

# ruff: noqa: E501  (data tables: one transcript per line reads better than split strings)
from __future__ import annotations

import pytest

from pieces_integration.domain.code_blocks import (
    extract_code_blocks,
    language_from_info,
    normalise_code,
)

# (id, markdown, [(language, code), ...])
CASES: list[tuple[str, str, list[tuple[str | None, str]]]] = [
    (
        "plain-python-fence",
        "Here is a helper:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\nUse it wisely.",
        [("python", "def add(a, b):\n    return a + b")],
    ),
    (
        "two-blocks-two-languages",
        "Install it:\n\n```bash\npip install httpx\n```\n\nThen:\n\n```python\n"
        "import httpx\nr = httpx.get('https://example.org')\n```\n",
        [
            ("bash", "pip install httpx"),
            ("python", "import httpx\nr = httpx.get('https://example.org')"),
        ],
    ),
    (
        "tilde-fence-with-attributes",
        '~~~ js title="app.js" {3}\nconst app = express();\napp.listen(3000);\n~~~\n',
        [("javascript", "const app = express();\napp.listen(3000);")],
    ),
    (
        "nested-fence-is-one-outer-block",
        "Your README could contain:\n\n````markdown\n# Usage\n\n```python\nimport mylib\n```\n````\n",
        [("markdown", "# Usage\n\n```python\nimport mylib\n```")],
    ),
    (
        "fence-inside-ordered-list",
        "1. Create the table:\n\n   ```sql\n   CREATE TABLE users (id serial primary key);\n   ```\n\n"
        "2. Insert a row:\n\n   ```sql\n   INSERT INTO users DEFAULT VALUES;\n   ```\n",
        [
            ("sql", "CREATE TABLE users (id serial primary key);"),
            ("sql", "INSERT INTO users DEFAULT VALUES;"),
        ],
    ),
    (
        "fence-in-nested-bullet-list",
        "- Backend\n  - Add the route:\n\n    ```ts\n    router.get('/health', (_req, res) => res.send('ok'));\n"
        "    ```\n- Frontend\n",
        [("typescript", "router.get('/health', (_req, res) => res.send('ok'));")],
    ),
    (
        "fence-in-blockquote",
        '> Quoting the docs:\n>\n> ```go\n> func main() {\n>     fmt.Println("hi")\n> }\n> ```\n',
        [("go", 'func main() {\n    fmt.Println("hi")\n}')],
    ),
    (
        "indented-code-block-detected",
        "The old version was:\n\n    def legacy(self):\n        return self.value is None\n\nDon't do that.",
        [("python", "def legacy(self):\n    return self.value is None")],
    ),
    (
        "short-blocks-ignored",
        "Run `ls`:\n\n```sh\nls -la\n```\n\nand then\n\n```sh\ndocker compose up -d\n```\n",
        [("bash", "docker compose up -d")],
    ),
    (
        "duplicates-by-normalised-content",
        "```python\nprint('hello world')\n```\n\nAgain, same thing:\n\n```python\n"
        "print('hello world')   \n\n```\n",
        [("python", "print('hello world')")],
    ),
    (
        "duplicate-takes-label-of-later-copy",
        "Unlabeled first:\n\n```\nSELECT 1 FROM dual;\n```\n\nLabelled:\n\n```postgresql\n"
        "SELECT 1 FROM dual;\n```\n",
        [("sql", "SELECT 1 FROM dual;")],
    ),
    (
        "unclosed-fence-runs-to-end",
        'Streaming got cut off:\n\n```rust\nfn main() {\n    println!("hi");\n}\n',
        [("rust", 'fn main() {\n    println!("hi");\n}')],
    ),
    (
        "inline-code-is-not-a-block",
        "Use ``` ```python ``` ``` to open a block, or `const x = 1;` inline. Nothing else here.",
        [],
    ),
    (
        "four-backtick-fence-keeps-inner-three",
        "````\n```\nstill inside the outer block\n```\n````\n",
        [(None, "```\nstill inside the outer block\n```")],
    ),
    (
        "info-aliases",
        "```py\nx = compute(1)\n```\n```yml\nservices:\n  web: {}\n```\n```shell\necho $HOME/bin\n```\n",
        [
            ("python", "x = compute(1)"),
            ("yaml", "services:\n  web: {}"),
            ("bash", "echo $HOME/bin"),
        ],
    ),
    (
        "text-info-means-no-language",
        "Expected output:\n\n```text\nPASSED tests/test_app.py::test_ok\n```\n",
        [(None, "PASSED tests/test_app.py::test_ok")],
    ),
    (
        "backtick-in-info-string-is-not-a-fence",
        "```py`thon\nnot code\n```\n",
        [],
    ),
    (
        "crlf-line-endings",
        "Code:\r\n\r\n```js\r\nconsole.log('windows');\r\n```\r\n",
        [("javascript", "console.log('windows');")],
    ),
    (
        "diff-block",
        "Apply this:\n\n```diff\n- timeout = 5\n+ timeout = 30\n```\n",
        [("diff", "- timeout = 5\n+ timeout = 30")],
    ),
    (
        "unlabeled-json-detected",
        'The response body:\n\n```\n{\n  "id": 42,\n  "tags": ["a", "b"]\n}\n```\n',
        [("json", '{\n  "id": 42,\n  "tags": ["a", "b"]\n}')],
    ),
    (
        "html-pre-is-not-markdown-code",
        "<pre><code>raw html code block here</code></pre>\n\n```css\n.btn { color: red; }\n```\n",
        [("css", ".btn { color: red; }")],
    ),
    (
        "empty-fence-ignored",
        "```python\n```\n\n```python\n\n\n```\n",
        [],
    ),
    (
        "pandoc-attribute-info",
        "```{.python .numberLines}\nfor i in range(3):\n    print(i)\n```\n",
        [("python", "for i in range(3):\n    print(i)")],
    ),
    (
        "fence-marker-mid-line-is-prose",
        "You can write ```python at the start of a line to begin a block; this sentence isn't one.",
        [],
    ),
    (
        "unlabeled-go-detected",
        '```\npackage main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("ok")\n}\n```\n',
        [("go", 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("ok")\n}')],
    ),
    (
        "longer-closing-fence-closes",
        "```c\nint main(void) { return 0; }\n`````\nafter\n",
        [("c", "int main(void) { return 0; }")],
    ),
    (
        "tilde-fence-containing-backtick-fences",
        "~~~markdown\nUse:\n```bash\nmake test\n```\n~~~\n",
        [("markdown", "Use:\n```bash\nmake test\n```")],
    ),
    (
        "unlabeled-ambiguous-stays-unlabeled",
        "```\nhello there, general\n```\n",
        [(None, "hello there, general")],
    ),
]


@pytest.mark.parametrize(
    ("markdown", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_extracts_exact_blocks(markdown: str, expected: list[tuple[str | None, str]]) -> None:
    blocks = extract_code_blocks(markdown)
    assert [(b.language, b.code) for b in blocks] == expected


def test_there_are_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20


def test_language_source_and_start_line() -> None:
    blocks = extract_code_blocks(
        "intro\n\n```python\nx = compute(1)\n```\n\n```\nimport os\n\ndef f(self):\n    return None\n```\n"
    )
    assert [(b.language_source, b.start_line) for b in blocks] == [("info", 3), ("detected", 7)]


def test_fingerprint_ignores_indentation_and_trailing_space() -> None:
    a = extract_code_blocks("```\n    x = compute(1)  \n```\n")[0]
    b = extract_code_blocks("- item\n\n  ```\n  x = compute(1)\n  ```\n")[0]
    assert a.fingerprint == b.fingerprint


def test_ten_characters_is_enough() -> None:
    assert [b.code for b in extract_code_blocks("```\n0123456789\n```\n")] == ["0123456789"]
    assert extract_code_blocks("```\n012345678\n```\n") == []


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ("", False),
        ("   ", False),
        ("Python", "python"),
        ("language-ts", "typescript"),
        ("c++", "cpp"),
        ("C#", "csharp"),
        ("plaintext", None),
        ("{.go}", "go"),
        ("kotlin title=x.kt", "kotlin"),
    ],
)
def test_language_from_info(info: str, expected: str | None | bool) -> None:
    assert language_from_info(info) == expected


def test_normalise_code() -> None:
    assert normalise_code("\n\n  a\r\n    b  \r\n\n") == "a\n  b"
