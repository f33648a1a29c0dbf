"""The "allowed" contract type on import graphs built here: what it refuses and what it lets
through (tests/test_contracts.py runs it through lint-imports on the code itself)."""

import pytest
from grimp import ImportGraph

from lint.allowed_imports import AllowedImportsContract


def graph_of(imports: list[tuple[str, str]]) -> ImportGraph:
    graph = ImportGraph()
    for line, (importer, imported) in enumerate(imports, start=1):
        for module in (importer, imported):
            graph.add_module(module)
        parts = importer.split(".")  # its packages, as grimp's graph of a package holds them
        for depth in range(1, len(parts)):
            graph.add_module(".".join(parts[:depth]))
        graph.add_import(
            importer=importer, imported=imported, line_number=line, line_contents="import"
        )
    return graph


def contract(**options) -> AllowedImportsContract:
    return AllowedImportsContract(
        name="allowed",
        session_options={"root_packages": ["app"]},
        contract_options={"source_modules": ["app.core"], "allowed_modules": ["numpy"], **options},
    )


@pytest.mark.parametrize(
    ("imports", "kept"),
    [
        ([("app.core.a", "numpy")], True),
        ([("app.core.a", "json"), ("app.core.a", "collections.abc")], True),  # the stdlib
        ([("app.core.a", "app.web"), ("app.core.a", "app.core.b")], True),  # the root package
        ([("app.web", "django"), ("app.core.a", "numpy")], True),  # outside the sources
        ([("app.core.a", "django")], False),
        ([("app.core.deep.er", "openvino")], False),  # a descendant, a package nobody named
        ([("app.core", "numpyx")], False),  # a prefix of an allowed name is another name
    ],
)
def test_only_the_listed_packages_pass(imports, kept):
    assert contract().check(graph_of(imports), verbose=False).kept is kept


def test_excluded_modules_and_their_descendants_are_not_checked():
    graph = graph_of([("app.core.ml.run", "onnxruntime"), ("app.core.view", "onnxruntime")])
    check = contract(exclude_modules=["app.core.ml"]).check(graph, verbose=False)
    assert check.metadata["illegal"] == [
        {"importer": "app.core.view", "imported": "onnxruntime", "lines": [2]}
    ]


@pytest.mark.parametrize(
    "options", [{"source_modules": ["app.cor"]}, {"exclude_modules": ["app.core.gone"]}]
)
def test_a_module_not_in_the_graph_is_an_error_not_a_contract_kept(options):
    """A typo, or a module renamed since the contract was written, would check nothing."""
    graph = graph_of([("app.core.a", "django")])
    with pytest.raises(ValueError, match="not present in the graph"):
        contract(**options).check(graph, verbose=False)
