"""Every message the server can show has a Simplified Chinese translation, placeholders intact.

Messages are found where they are written: `_()` in the templates (babel with jinja2's extractor),
and in Python by reading the source: the first string given to an ApiError subclass or RowProblem,
`fields={...}` problems, `problems[...] = ...` problems, `gettext(...)`, the problem constants of
server/domain/validation.py and the `*_LABELS` / `*_MESSAGES` tables of any server module.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import extract

import server.errors
from server.http.i18n import load_translations, read_catalog

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "web" / "templates"
SERVER = ROOT / "server"
GETTEXT_NAMES = frozenset({"gettext", "_"})
TABLE_SUFFIXES = ("_LABELS", "_MESSAGES")
PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}|%\((\w+)\)[sd]")


def _subclass_names(cls: type) -> set[str]:
    names = {cls.__name__}
    for sub in cls.__subclasses__():
        names |= _subclass_names(sub)
    return names


def _callee(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _base_names(node: ast.ClassDef) -> set[str]:
    return {name for name in (_callee(base) for base in node.bases) if name}


def error_class_names(trees: dict[Path, ast.Module]) -> set[str]:
    """ApiError and its subclasses: those of server.errors, and any our source derives from them."""
    names = _subclass_names(server.errors.ApiError)
    grew = True
    while grew:
        grew = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.ClassDef)
                    and node.name not in names
                    and _base_names(node) & names
                ):
                    names.add(node.name)
                    grew = True
    return names


def _module_strings(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if (
            isinstance(target, ast.Name)
            and isinstance(value, ast.Constant)
            and isinstance(value.value, str)
        ):
            found[target.id] = value.value
    return found


class _Messages(ast.NodeVisitor):
    """Collects the msgids of one module."""

    def __init__(self, constants: dict[str, str], error_names: set[str]) -> None:
        self.constants = constants
        self.error_names = error_names
        self.found: set[str] = set()
        self._classes: list[set[str]] = []

    def _text(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        return None

    def _first_text(self, args: list[ast.expr]) -> str | None:
        for arg in args:
            text = self._text(arg)
            if text is not None:
                return text
        return None

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._classes.append(_base_names(node) | {node.name})
        self.generic_visit(node)
        self._classes.pop()

    def _is_error_super_init(self, node: ast.Call) -> bool:
        func = node.func
        return (
            isinstance(func, ast.Attribute)
            and func.attr == "__init__"
            and isinstance(func.value, ast.Call)
            and _callee(func.value.func) == "super"
            and bool(self._classes)
            and bool(self._classes[-1] & self.error_names)
        )

    def visit_Call(self, node: ast.Call) -> None:
        name = _callee(node.func)
        if name in self.error_names or name == "RowProblem" or self._is_error_super_init(node):
            self._add(self._first_text(node.args))
        elif name in GETTEXT_NAMES and node.args:
            self._add(self._text(node.args[0]))
        for keyword in node.keywords:
            if keyword.arg == "fields" and isinstance(keyword.value, ast.Dict):
                for value in keyword.value.values:
                    self._add(self._text(value))
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        # problems["field"] = REQUIRED: how the field rules report a bad value.
        for target in node.targets:
            if (
                isinstance(target, ast.Subscript)
                and isinstance(target.value, ast.Name)
                and target.value.id == "problems"
            ):
                self._add(self._text(node.value))
        self.generic_visit(node)

    def _add(self, text: str | None) -> None:
        if text:
            self.found.add(text)


def _tables(tree: ast.Module) -> Iterator[str]:
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target, table = node.targets[0], node.value
        if isinstance(table, ast.Call) and _callee(table.func) == "MappingProxyType" and table.args:
            table = table.args[0]  # constant tables are read-only views of their dict
        if (
            isinstance(target, ast.Name)
            and target.id.endswith(TABLE_SUFFIXES)
            and isinstance(table, ast.Dict)
        ):
            for value in table.values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    yield value.value


def python_messages() -> dict[str, str]:
    """msgid → the file that uses it, for every message in server/."""
    trees = {
        path: ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(SERVER.rglob("*.py"))
    }
    error_names = error_class_names(trees)
    found: dict[str, str] = {}
    for path, tree in trees.items():
        where = str(path.relative_to(ROOT))
        constants = _module_strings(tree)
        collector = _Messages(constants, error_names)
        collector.visit(tree)
        messages = set(collector.found)
        if path == SERVER / "domain" / "validation.py":
            messages |= set(constants.values())
        messages |= set(_tables(tree))
        for message in messages:
            found.setdefault(message, where)
    return found


def template_messages() -> dict[str, str]:
    """msgid → the template that uses it."""
    found: dict[str, str] = {}
    options = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}
    for path in sorted(TEMPLATES.rglob("*.html")):
        with path.open("rb") as handle:
            for _line, message, _comments, _context in extract(
                "jinja2.ext.babel_extract", handle, options=options
            ):
                for text in message if isinstance(message, tuple) else (message,):
                    if text:
                        found.setdefault(text, str(path.relative_to(ROOT)))
    return found


def placeholders(text: str) -> set[str]:
    """The names of {name} and %(name)s placeholders."""
    return {brace or percent for brace, percent in PLACEHOLDER.findall(text)}


@pytest.fixture(scope="module")
def catalog() -> dict[str, str]:
    """msgid → msgstr of the Simplified Chinese catalog (all its files)."""
    parsed = read_catalog("zh_CN")
    assert parsed is not None and parsed.locale is not None and str(parsed.locale) == "zh_Hans_CN"
    assert parsed.plural_forms == "nplurals=1; plural=0;"
    result: dict[str, str] = {}
    for message in parsed:
        if not message.id:
            continue
        assert not message.fuzzy, f"fuzzy entry: {message.id!r}"
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        msgstr = message.string if isinstance(message.string, str) else message.string[0]
        result[msgid] = msgstr
    return result


def test_extraction_finds_each_kind_of_message() -> None:
    python = python_messages()
    templates = template_messages()
    assert "Please sign in first." in python  # an ApiError subclass in the auth middleware
    assert "is required" in python  # a validation constant
    assert "is not a known organization" in python  # a fields={...} problem
    assert "The file is empty." in python  # a RowProblem
    assert "{count} rows have problems; nothing was imported." in python  # super().__init__
    assert "The username or password is not correct." in python  # gettext(CONSTANT)
    assert "Ordinary member" in python  # a label table
    assert "Sign in" in templates
    assert "ImportRejected" in error_class_names(
        {path: ast.parse(path.read_text(encoding="utf-8")) for path in SERVER.rglob("*.py")}
    )


@pytest.mark.parametrize("source", ["templates", "python"])
def test_every_message_is_translated(source: str, catalog: dict[str, str]) -> None:
    messages = template_messages() if source == "templates" else python_messages()
    missing = sorted(
        f"{where}: {msgid!r}" for msgid, where in messages.items() if not catalog.get(msgid)
    )
    assert not missing, "untranslated:\n" + "\n".join(missing)


def test_translations_keep_their_placeholders(catalog: dict[str, str]) -> None:
    wrong = sorted(
        f"{msgid!r} → {msgstr!r}"
        for msgid, msgstr in catalog.items()
        if msgstr and placeholders(msgid) != placeholders(msgstr)
    )
    assert not wrong, "placeholders differ:\n" + "\n".join(wrong)


def test_translations_are_chinese(catalog: dict[str, str]) -> None:
    untranslated = sorted(
        msgid
        for msgid, msgstr in catalog.items()
        if msgstr and not re.search(r"[\u4e00-\u9fff]", msgstr) and re.search(r"[a-z]{3}", msgid)
    )
    assert not untranslated, "left in English:\n" + "\n".join(untranslated)


def test_the_server_loads_the_catalog() -> None:
    translations = load_translations()
    assert translations["zh_CN"].gettext("Sign in") == "登录"
    assert translations["en"].gettext("Sign in") == "Sign in"
