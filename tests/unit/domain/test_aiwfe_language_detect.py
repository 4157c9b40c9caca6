"""Accuracy of the heuristic language detector on labelled samples of chat-sized snippets.

Abstaining (None) is allowed and counted separately: a wrong label is worse than none,
because it becomes a Pieces tag the user sees.
"""

# ruff: noqa: E501  (data tables: one transcript per line reads better than split strings)
from __future__ import annotations

import time

import pytest

from pieces_integration.domain.language_detect import detect_language

SAMPLES: list[tuple[str, str]] = [
    ("python", "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)"),
    (
        "python",
        "import os\nfrom pathlib import Path\n\nfor p in Path('.').iterdir():\n    print(p)",
    ),
    ("python", "class Repo:\n    def __init__(self, db):\n        self.db = db\n"),
    ("python", 'async def main() -> None:\n    data = await fetch()\n    print(f"{data}")'),
    ("python", "with open('a.txt') as fh:\n    lines = [l.strip() for l in fh]\nprint(len(lines))"),
    (
        "javascript",
        "const express = require('express');\nconst app = express();\napp.listen(3000);",
    ),
    (
        "javascript",
        "function sum(arr) {\n  return arr.reduce((a, b) => a + b, 0);\n}\nconsole.log(sum([1, 2]));",
    ),
    (
        "javascript",
        "document.querySelector('#btn').addEventListener('click', () => {\n  alert('hi');\n});",
    ),
    (
        "javascript",
        "export default function App() {\n  const [n, setN] = useState(0);\n  return n;\n}",
    ),
    (
        "typescript",
        "interface User {\n  id: number;\n  name: string;\n}\nconst u: User = { id: 1, name: 'a' };",
    ),
    ("typescript", "function greet(name: string): string {\n  return `Hello ${name}`;\n}"),
    (
        "typescript",
        "type Handler = (req: Request) => Promise<Response>;\nexport const h: Handler = async (r) => new Response();",
    ),
    ("go", 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hi")\n}'),
    (
        "go",
        'func (s *Server) Start() error {\n\tln, err := net.Listen("tcp", s.addr)\n\tif err != nil {\n\t\treturn err\n\t}\n\treturn s.serve(ln)\n}',
    ),
    ("go", "for i := 0; i < 10; i++ {\n\tgo func(n int) { ch <- n }(i)\n}"),
    (
        "rust",
        'fn main() {\n    let mut v = Vec::new();\n    v.push(1);\n    println!("{:?}", v);\n}',
    ),
    (
        "rust",
        "use std::collections::HashMap;\n\npub struct Cache {\n    map: HashMap<String, String>,\n}",
    ),
    (
        "rust",
        'impl Display for Point {\n    fn fmt(&self, f: &mut Formatter) -> Result {\n        write!(f, "({}, {})", self.x, self.y)\n    }\n}',
    ),
    (
        "java",
        'public class Main {\n    public static void main(String[] args) {\n        System.out.println("hi");\n    }\n}',
    ),
    (
        "java",
        "import java.util.List;\n\n@Override\npublic String toString() {\n    return name;\n}",
    ),
    (
        "csharp",
        'using System;\n\nnamespace Demo {\n    class P { static void Main() { Console.WriteLine("hi"); } }\n}',
    ),
    ("csharp", "public class User\n{\n    public string Name { get; set; }\n}"),
    ("c", '#include <stdio.h>\n\nint main(void) {\n    printf("hi\\n");\n    return 0;\n}'),
    ("c", "#include <stdlib.h>\nchar *buf = malloc(sizeof(char) * 64);\nfree(buf);"),
    ("cpp", '#include <iostream>\n\nint main() {\n    std::cout << "hi" << std::endl;\n}'),
    (
        "cpp",
        "#include <vector>\ntemplate <typename T>\nT first(const std::vector<T>& v) { return v[0]; }",
    ),
    ("ruby", 'class Dog\n  attr_accessor :name\n  def bark\n    puts "woof"\n  end\nend'),
    ("ruby", "[1, 2, 3].each do |n|\n  puts n * 2\nend"),
    ("php", "<?php\n$name = $_GET['name'];\necho \"Hello $name\";"),
    ("bash", '#!/bin/bash\nset -euo pipefail\nfor f in *.log; do\n  gzip "$f"\ndone'),
    ("bash", "sudo apt-get update\nsudo apt-get install -y postgresql"),
    ("bash", "git checkout -b feature\ngit commit -am 'wip'\ngit push -u origin feature"),
    (
        "sql",
        "SELECT u.id, count(*)\nFROM users u\nJOIN orders o ON o.user_id = u.id\nGROUP BY u.id;",
    ),
    ("sql", "CREATE TABLE items (\n  id serial PRIMARY KEY,\n  name text NOT NULL\n);"),
    ("sql", "UPDATE users SET active = false WHERE last_login < now() - interval '1 year';"),
    ("html", '<!DOCTYPE html>\n<html>\n<body>\n  <div class="app"></div>\n</body>\n</html>'),
    ("html", '<ul>\n  <li><a href="/">Home</a></li>\n  <li><a href="/about">About</a></li>\n</ul>'),
    ("css", ".btn {\n  color: #fff;\n  padding: 8px 16px;\n}\n.btn:hover {\n  opacity: 0.8;\n}"),
    ("css", "@media (max-width: 600px) {\n  body {\n    font-size: 14px;\n  }\n}"),
    ("json", '{\n  "name": "app",\n  "version": "1.0.0",\n  "private": true\n}'),
    ("json", '[{"id": 1}, {"id": 2}]'),
    (
        "yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n    - port: 80",
    ),
    (
        "yaml",
        "services:\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_PASSWORD: example",
    ),
]
# Fragments as they come out of the middle of real files (no shebang, no `<?php`, a JSON
# document cut in two): the features added after the held-out run of
# bench/bench_language_detect.py. Each would be None or wrong without its feature.
FRAGMENTS: list[tuple[str, str]] = [
    (
        "php",
        "    public function handle($request)\n    {\n        $user = $this->auth->user();\n        return $user;\n    }",
    ),
    (
        "sql",
        "CREATE OR REPLACE FUNCTION touch() RETURNS trigger AS $$\nBEGIN\n  NEW.updated := now();\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;",
    ),
    (
        "yaml",
        "  name: build\n  runs-on: ubuntu-latest\n  timeout-minutes: 30\n  permissions: read-all\n",
    ),
    (
        "json",
        '    "name": "demo",\n    "version": "2.1.0",\n    "license": "MIT",\n    "files": [\n      "dist"\n    ],',
    ),
    (
        "c",
        '#ifndef BUF_H\n#define BUF_H\n#include "config.h"\nstatic size_t buf_len(const char *s)\n{\n    return s == NULL ? 0 : strlen(s);\n}',
    ),
    (
        "cpp",
        "class Buffer {\npublic:\n    explicit Buffer(std::size_t n);\n    virtual ~Buffer();\nprivate:\n    std::vector<char> data_;\n};",
    ),
]
PROSE = [
    "hello there, general kenobi",
    "The quick brown fox jumps over the lazy dog.",
    "1. open the app\n2. click settings\n3. done",
]


def test_accuracy_on_labelled_samples() -> None:
    results = [(expected, detect_language(code)) for expected, code in SAMPLES]
    correct = sum(1 for expected, got in results if got == expected)
    wrong = [(expected, got) for expected, got in results if got is not None and got != expected]
    languages = {expected for expected, _ in SAMPLES}
    assert len(languages) >= 12
    assert correct / len(SAMPLES) >= 0.9, results  # measured 42/43, 0 wrong
    assert len(wrong) <= 2, wrong


@pytest.mark.parametrize(("expected", "code"), FRAGMENTS, ids=[f[0] for f in FRAGMENTS])
def test_fragments_from_the_middle_of_files(expected: str, code: str) -> None:
    assert detect_language(code) == expected


@pytest.mark.parametrize("text", PROSE)
def test_prose_is_not_given_a_language(text: str) -> None:
    assert detect_language(text) is None


def test_empty_is_none() -> None:
    assert detect_language("   \n") is None


@pytest.mark.parametrize(
    "text",
    ["still inside the outer block " * 800, "a" * 80_000, ".a .b .c " * 9000, "x " * 40_000 + "{"],
)
def test_adversarial_input_is_fast(text: str) -> None:
    started = time.perf_counter()
    detect_language(text)
    assert time.perf_counter() - started < 1.0
