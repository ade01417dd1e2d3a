"""The shape of the code, as the README's architecture section draws it, kept by tests.

- bot/ is the core: it never imports FastAPI, the API or the training CLI.
- Inside bot/, imports run one way: language <- dialogue <- service <- manage, assist; the loader and config
  sit above.
- No import circle among bot's modules; no room (folder) of more than ten modules; no module over
  about 300 lines.
- Shopper-facing Chinese lives in the shop's voice (bot/dialogue/voice.yml and shop.yml), never in
  code: the only Chinese in bot/ and api/ code is in docstrings, in regular expressions, and in the
  modules that read Chinese (the normaliser, the masker, the rules, the slot readers).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOT = ROOT / "bot"
LAYERS = {"language": 0, "dialogue": 1, "service": 2, "manage": 3, "assist": 3, "integrations": 3, "media": 3,
          "figures": 3}
MAX_MODULES = 10
MAX_LINES = 300
# Modules whose Chinese is what they read, not what they say: lexicons and patterns.
READERS = {"bot/language/normalize.py", "bot/language/pii.py", "bot/language/forms.py", "bot/dialogue/rules.py",
           "bot/dialogue/slots.py"}
CJK = re.compile(r"[\u4e00-\u9fff]")
SAMPLE = re.compile(r"PROBES|SAMPLE")


def modules(top: Path) -> list[Path]:
    return sorted(p for p in top.rglob("*.py") if "migrations" not in p.parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def test_bot_never_imports_the_web_framework_the_api_or_training() -> None:
    for path in modules(BOT):
        bad = {m for m in imports(path) if m.split(".")[0] in ("fastapi", "starlette", "uvicorn", "api", "training")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_imports_inside_bot_run_one_way() -> None:
    for path in modules(BOT):
        name = module_name(path).split(".")
        if len(name) < 2 or name[1] not in LAYERS:
            continue
        own = LAYERS[name[1]]
        for target in imports(path):
            parts = target.split(".")
            if parts[0] == "bot" and len(parts) > 1 and parts[1] in LAYERS:
                assert LAYERS[parts[1]] <= own, f"{'.'.join(name)} ({name[1]}) imports {target} ({parts[1]})"
            assert target not in ("bot.loader", "bot.config"), f"{'.'.join(name)} imports {target}"


def test_no_import_circle_in_bot() -> None:
    names = {module_name(p): p for p in modules(BOT)}
    graph = {n: {m for m in imports(p) if m in names and m != n} for n, p in names.items()}
    seen: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(n: str, trail: list[str]) -> None:
        seen[n] = 1
        for m in sorted(graph[n]):
            assert seen.get(m) != 1, f"import circle: {' -> '.join(trail + [n, m])}"
            if m not in seen:
                visit(m, trail + [n])
        seen[n] = 2

    for n in sorted(graph):
        if n not in seen:
            visit(n, [])


def test_rooms_are_small_and_so_are_modules() -> None:
    for folder in [BOT, *[p for p in BOT.iterdir() if p.is_dir() and p.name in LAYERS], ROOT / "api"]:
        count = len([p for p in folder.glob("*.py") if p.name != "__init__.py"])
        assert count <= MAX_MODULES, f"{folder.relative_to(ROOT)} holds {count} modules"
    for path in modules(BOT) + modules(ROOT / "api") + modules(ROOT / "training"):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines"


def _strings_said(path: Path) -> list[tuple[int, str]]:
    """String literals of a module that are neither docstrings nor regular expressions."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    skip: set[int] = set()  # ids of Constant nodes that are docstrings or patterns
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            skip.add(id(body[0].value))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "compile":
            skip.update(id(n) for arg in node.args for n in ast.walk(arg))
        # Sample input the bot reads (to warm up, to probe a cache) is not something it says.
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and SAMPLE.search(t.id) for t in node.targets):
            skip.update(id(n) for n in ast.walk(node.value))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            out.append((node.lineno, node.value))
    return out


@pytest.mark.parametrize("path", [p for p in modules(BOT) + modules(ROOT / "api")
                                  if str(p.relative_to(ROOT)) not in READERS], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_chinese_for_shoppers_in_code(path: Path) -> None:
    said = [(line, text) for line, text in _strings_said(path) if CJK.search(text)]
    assert not said, f"{path.relative_to(ROOT)}: shopper-facing text belongs in the shop's voice: {said[:3]}"


def test_no_chinese_in_the_widgets_code() -> None:
    source = (ROOT / "api" / "static" / "kefu-widget.js").read_text(encoding="utf-8")
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", source, flags=re.S)
    assert not CJK.search(code), "the widget's words come from GET /v1/widget (the shop's voice)"


def test_the_check_finds_chinese_where_it_should(tmp_path: Path) -> None:
    """The scanner itself: a sentence in code is found; a docstring and a pattern are not."""
    sample = tmp_path / "sample.py"
    sample.write_text('"""说明。"""\nimport re\nP = re.compile(r"发货")\ndef f():\n    """文档"""\n'
                      '    return "亲，您好"\n', encoding="utf-8")
    assert [t for _, t in _strings_said(sample) if CJK.search(t)] == ["亲，您好"]
