"""Sliced ``.gcode.3mf`` files for tests, shaped like Bambu Studio's exports."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="gcode" ContentType="text/x.gcode"/></Types>'
)


def slice_info(plates: Sequence[int], model_id: str, filaments: Sequence[tuple[str, str]]) -> str:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<config>\n  <header>',
        '    <header_item key="X-BBL-Client-Type" value="slicer"/>',
        '    <header_item key="X-BBL-Client-Version" value="01.10.01.50"/>',
        "  </header>",
    ]
    for index in plates:
        parts += [
            "  <plate>",
            f'    <metadata key="index" value="{index}"/>',
            f'    <metadata key="printer_model_id" value="{model_id}"/>',
            '    <metadata key="nozzle_diameters" value="0.4"/>',
            '    <metadata key="prediction" value="1234"/>',
            '    <metadata key="weight" value="5.67"/>',
            '    <object identify_id="75" name="Cube" skipped="false" />',
        ]
        for i, (kind, color) in enumerate(filaments, 1):
            parts.append(
                f'    <filament id="{i}" tray_info_idx="GFA00" type="{kind}" color="{color}" '
                'used_m="0.5" used_g="1.50" />'
            )
        parts.append("  </plate>")
    parts.append("</config>\n")
    return "\n".join(parts)


def gcode(layers: int, padding: int = 0) -> bytes:
    head = (
        "; HEADER_BLOCK_START\n; BambuStudio 01.10.01.50\n; model printing time: 20m 34s; "
        f"total estimated time: 27m 1s\n; total layer number: {layers}\n"
        "; filament_density: 1.26\n; HEADER_BLOCK_END\n"
    ).encode()
    body = b"G28\nM104 S220\n" + b"G1 X10 Y10 E0.5\n" * 10
    return head + body + (os.urandom(padding) if padding else b"")


def make_3mf(
    path: Path,
    *,
    plates: Sequence[int] = (1,),
    model_id: str = "N2S",
    filaments: Sequence[tuple[str, str]] = (("PLA", "#FFFFFF"),),
    layers: int = 12,
    title: str = "Calibration cube",
    padding: int = 0,
) -> Path:
    """A sliced 3MF; ``padding`` random bytes (incompressible) make it as large as needed."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr(
            "3D/3dmodel.model",
            f'<?xml version="1.0"?><model><metadata name="Title">{title}</metadata></model>',
        )
        archive.writestr("Metadata/slice_info.config", slice_info(plates, model_id, filaments))
        for index in plates:
            archive.writestr(f"Metadata/plate_{index}.gcode", gcode(layers, padding))
            archive.writestr(f"Metadata/plate_{index}.png", b"\x89PNG\r\n\x1a\n")
    return path
