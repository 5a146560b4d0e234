"""The public surface is a contract with users: changing it must be deliberate."""

import strataml
import strataml.data
import strataml.spine


def test_top_level_names() -> None:
    assert {"Column", "Contract", "DatasetVersion", "IngestReport", "Settings", "SourceSpec", "StrataError",
            "Workspace", "dataset", "ingest"} <= set(strataml.__all__)
    for name in strataml.__all__:
        assert getattr(strataml, name) is not None


def test_layer_doors_export_what_they_list() -> None:
    for module in (strataml.spine, strataml.data):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
    assert set(strataml.data.__all__) == {
        "TYPES", "Column", "Contract", "DatasetVersion", "IngestReport", "SourceSpec", "breaking_changes", "diff",
        "get_version", "infer_contract", "ingest", "list_datasets", "list_versions", "parse_ref", "quarantine_rows",
        "resolve_contract",
    }


def test_layers_import_only_to_their_left() -> None:
    import ast
    from pathlib import Path

    order = ["spine", "data", "features", "models", "serving", "monitoring", "pipelines"]
    root = Path(strataml.__file__).parent
    for i, layer in enumerate(order):
        for path in (root / layer).rglob("*.py") if (root / layer).exists() else []:
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("strataml."):
                    target = node.module.split(".")[1]
                    if target in order:
                        assert order.index(target) <= i, f"{path.name} ({layer}) imports {node.module}"
