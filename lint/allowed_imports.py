"""import-linter's "allowed" contract type: the only third-party packages a part of the code
may import directly, listed in the contract (pyproject.toml's [tool.importlinter]).

import-linter's own types forbid packages by name, so a package nobody thought to forbid (a new
inference library, say) passes them; this type refuses every package its list does not name.
The standard library (``sys.stdlib_module_names``) and the root packages are always allowed.
Registered in pyproject.toml as ``contract_types``; tests/lint/test_allowed_imports.py and
tests/test_contracts.py show it failing.
"""

import sys

from grimp import ImportGraph
from importlinter import Contract, ContractCheck, fields, output


class AllowedImportsContract(Contract):
    """Modules in ``source_modules`` (each with its descendants), except those in
    ``exclude_modules`` (likewise), import no third-party package but ``allowed_modules``
    (top-level names, e.g. "numpy")."""

    type_name = "allowed"

    source_modules = fields.ListField(subfield=fields.StringField())
    allowed_modules = fields.ListField(subfield=fields.StringField())
    exclude_modules = fields.ListField(subfield=fields.StringField(), required=False, default=[])

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        """Raises ValueError if a source or excluded module is not in the graph (a typo, or a
        module renamed since), which would otherwise leave nothing, or too much, checked."""
        for module in [*self.source_modules, *self.exclude_modules]:
            if module not in graph.modules:
                raise ValueError(f'"{module}" not present in the graph.')
        roots = set(self.session_options["root_packages"])
        allowed = roots | set(self.allowed_modules) | set(sys.stdlib_module_names)
        illegal = []
        for importer in sorted(graph.modules):
            if not _within(importer, self.source_modules) or _within(
                importer, self.exclude_modules
            ):
                continue
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                if imported.split(".")[0] not in allowed:
                    lines = [
                        detail["line_number"]
                        for detail in graph.get_import_details(importer=importer, imported=imported)
                    ]
                    illegal.append({"importer": importer, "imported": imported, "lines": lines})
        return ContractCheck(kept=not illegal, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        output.print(f"Allowed third-party packages: {', '.join(sorted(self.allowed_modules))}.")
        output.new_line()
        for found in check.metadata["illegal"]:
            lines = ", ".join(f"l.{line}" for line in found["lines"])
            output.print_error(f"{found['importer']} is not allowed to import {found['imported']}")
            output.print_error(f"    ({lines})", bold=False)
            output.new_line()


def _within(module: str, packages: list[str]) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in packages)
