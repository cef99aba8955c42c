"""Printer models: codes, serial prefixes and capabilities (protocol.md §11)."""

from __future__ import annotations

from bambu_lan.protocol.records import Record, record


@record(slots=True)
class ModelInfo(Record):
    name: str  # "A1"
    code: str  # "N2S"
    serial_prefix: str  # "039"
    wiki_series: str  # HMS wiki path component
    has_chamber_sensor: bool
    delta_reports: bool  # A1/P1 send deltas with msg:1; X1/P2S/H2 send full objects
    extruders: int = 1  # H2D, H2D Pro, H2C and X2D have two
    ams_kind: str = "AMS"  # what an AMS unit is when nothing else says (A1 family: AMS Lite)


MODELS: tuple[ModelInfo, ...] = (
    ModelInfo("X1 Carbon", "BL-P001", "00M", "x1", True, False),
    ModelInfo("X1", "BL-P002", "00M", "x1", True, False),
    ModelInfo("X1E", "C13", "03W", "x1", True, False),
    ModelInfo("P1P", "C11", "01S", "x1", False, True),
    ModelInfo("P1S", "C12", "01P", "x1", False, True),
    ModelInfo("A1 mini", "N1", "030", "a1-mini", False, True, 1, "AMS Lite"),
    ModelInfo("A1", "N2S", "039", "a1", False, True, 1, "AMS Lite"),
    ModelInfo("A2L", "N9", "26A", "a1", False, True, 1, "AMS Lite"),
    ModelInfo("P2S", "N7", "22E", "p2s", True, False),
    ModelInfo("H2D", "O1D", "094", "h2d", True, False, 2),
    ModelInfo("H2D Pro", "O1E", "239", "h2d", True, False, 2),
    ModelInfo("H2S", "O1S", "093", "h2s", True, False),
    ModelInfo("H2C", "O1C", "31B", "h2c", True, False, 2),
    ModelInfo("X2D", "N6", "20P", "x2d", True, False, 2),
)

_BY_CODE = {m.code: m for m in MODELS} | {"O1C2": MODELS[-2], "O2D": MODELS[10]}
_BY_PREFIX: dict[str, ModelInfo] = {}
for _model in MODELS:
    _BY_PREFIX.setdefault(_model.serial_prefix, _model)
_BY_PRODUCT: dict[str, ModelInfo] = {}
for _model in MODELS:
    _BY_PRODUCT[_model.name.lower()] = _model
# Product-name spellings seen in get_version replies (X1 Carbon firmware says "X1-Carbon").
_BY_PRODUCT["x1c"] = _BY_PRODUCT["x1 carbon"]


def _product_key(product_name: str) -> str:
    """ "Bambu Lab X1-Carbon" -> "x1 carbon": case, the brand and hyphens vary in the wild."""
    name = " ".join(product_name.replace("-", " ").split()).lower()
    return name.removeprefix("bambu lab ").strip()


def model_from_product_name(product_name: str) -> ModelInfo | None:
    return _BY_PRODUCT.get(_product_key(product_name)) if product_name else None


def model_from_code(code: str) -> ModelInfo | None:
    return _BY_CODE.get(code)


def model_from_serial(serial: str) -> ModelInfo | None:
    return _BY_PREFIX.get(serial[:3].upper())


def identify_model(
    *, product_name: str = "", project_name: str = "", serial: str = ""
) -> ModelInfo | None:
    """Best guess, most reliable source first (hw_ver is reused across models, so not used)."""
    return (
        model_from_product_name(product_name)
        or _BY_CODE.get(project_name)
        or (model_from_serial(serial) if serial else None)
    )
