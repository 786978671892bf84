"""The checked-in JSON Schemas are exactly what the models generate (no drift)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from events import TYPE_NAMES
from schemas import generate as gen
from schemas import registry
from schemas.registry import DOCUMENTS, ID_BASE, JSON_SCHEMA_DIALECT

REPO = Path(__file__).resolve().parents[3]
CHECKED_IN = REPO / "schemas" / "json"


def test_checked_in_schemas_match_the_models(tmp_path: Path) -> None:
    changes = gen.generate(tmp_path)
    assert {c.kind for c in changes} == {"missing"}
    fresh = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.schema.json")}
    committed = {p.name: p.read_text(encoding="utf-8") for p in CHECKED_IN.glob("*.schema.json")}
    drifted = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not drifted, (
        f"schemas/json is out of date ({', '.join(drifted)}); run: {gen.FIX_COMMAND} "
        "and commit the result"
    )
    assert gen.check(CHECKED_IN) == []


def test_one_document_per_type_plus_the_union_and_the_dead_letter() -> None:
    names = {d.name for d in DOCUMENTS}
    assert {f"touchpoint.{t}" for t in TYPE_NAMES} <= names
    assert {"touchpoint", "dead_letter"} <= names
    assert len(names) == len(DOCUMENTS)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d.name)
def test_documents_are_draft_2020_12_with_id_and_title(document: registry.SchemaDocument) -> None:
    text = (CHECKED_IN / document.filename).read_text(encoding="utf-8")
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["$id"] == f"{ID_BASE}{document.name}"
    assert schema["title"] and schema["description"]
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text == json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_type_documents_say_which_topic_they_go_to() -> None:
    schema = registry.get("touchpoint.sales.deal_won").json_schema()
    assert schema["title"] == "sales.deal_won"
    assert "touchpoints.sales" in schema["description"]
    assert schema["properties"]["type"]["const"] == "sales.deal_won"
    assert schema["additionalProperties"] is False


def test_check_reports_changed_missing_and_stale_files(tmp_path: Path) -> None:
    gen.generate(tmp_path)
    assert gen.check(tmp_path) == []
    (tmp_path / "touchpoint.schema.json").write_text("{}\n")
    (tmp_path / "dead_letter.schema.json").unlink()
    (tmp_path / "touchpoint.sales.old_thing.schema.json").write_text("{}\n")
    (tmp_path / "README.md").write_text("not a schema")
    drift = {(d.kind, d.filename) for d in gen.check(tmp_path)}
    assert drift == {
        ("changed", "touchpoint.schema.json"),
        ("missing", "dead_letter.schema.json"),
        ("stale", "touchpoint.sales.old_thing.schema.json"),
    }
    changes = gen.generate(tmp_path)
    assert len(changes) == 3
    assert gen.check(tmp_path) == []
    assert not (tmp_path / "touchpoint.sales.old_thing.schema.json").exists()
    assert (tmp_path / "README.md").exists()  # only *.schema.json files are managed


def test_python_m_schemas_generate_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gen.main(["--check", "--out", str(tmp_path)]) == 1
    assert gen.FIX_COMMAND in capsys.readouterr().err
    assert gen.main(["--out", str(tmp_path)]) == 0
    assert gen.main(["--check", "--out", str(tmp_path)]) == 0


def test_tandem_schemas_check_and_generate(tmp_path: Path) -> None:
    from streams.cli import _register, app

    _register()
    runner = CliRunner()
    result = runner.invoke(app, ["schemas", "check", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "missing: touchpoint.schema.json" in result.output
    assert "tandem schemas generate" in result.output
    result = runner.invoke(app, ["schemas", "generate", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["schemas", "check", "--dir", str(tmp_path)]).exit_code == 0
    assert runner.invoke(app, ["schemas", "check"]).exit_code == 0  # the checked-in files
    shown = runner.invoke(app, ["schemas", "show", "dead_letter"])
    assert json.loads(shown.stdout)["title"] == "Dead letter"
    assert runner.invoke(app, ["schemas", "show", "nope"]).exit_code == 1
    listed = json.loads(runner.invoke(app, ["schemas", "list", "--json"]).stdout)
    assert len(listed) == len(DOCUMENTS)


def test_register_adds_documents_and_refuses_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "DOCUMENTS", list(registry.DOCUMENTS))

    class Extra(BaseModel):
        """An extra document."""

        n: int

    document = registry.register("extra_thing", Extra)
    assert document.title == "Extra" and document.description == "An extra document."
    assert registry.get("extra_thing") is document
    assert document.json_schema()["$id"] == "urn:tandem:schema:extra_thing"
    with pytest.raises(ValueError, match="already registered"):
        registry.register("extra_thing", Extra)
    with pytest.raises(ValueError, match="bad document name"):
        registry.register("x.json", Extra)
    with pytest.raises(KeyError):
        registry.get("nothing")
