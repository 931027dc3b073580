"""The extension's stubs (edgerl/_edgerl.pyi) name what the extension has, and the package is typed."""

import ast
from pathlib import Path

import edgerl
from edgerl import _edgerl


def test_stubs_match_the_extension():
    stub = Path(edgerl.__file__).with_name("_edgerl.pyi")
    tree = ast.parse(stub.read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            cls = getattr(_edgerl, node.name)
            for item in node.body:
                name = item.name if isinstance(item, ast.FunctionDef) else getattr(getattr(item, "target", None), "id", None)
                if name and name != "__init__":
                    assert hasattr(cls, name), f"{node.name}.{name} is in the stub but not in the extension"
        elif isinstance(node, ast.FunctionDef):
            assert hasattr(_edgerl, node.name)
    public = [n for n in dir(_edgerl.Model) if not n.startswith("__")]
    for n in public:
        assert f"def {n}(" in stub.read_text() or f"    {n}:" in stub.read_text(), f"Model.{n} has no stub"
    assert Path(edgerl.__file__).with_name("py.typed").exists()


def test_exception_hierarchy():
    assert issubclass(edgerl.EdgerlError, RuntimeError)
    assert issubclass(edgerl.InvalidInputError, edgerl.EdgerlError)
    assert issubclass(edgerl.InvalidInputError, ValueError)
