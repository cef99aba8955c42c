"""The simulated camera's pictures: 1280×720 JPEGs that show the printer is live.

Each frame draws the model, serial, job, state, progress, layer and the time, and a print
that grows with the progress, so a person looking at ``camera serve`` sees it move.

Pillow draws them (the optional ``sim`` extra): encoding a JPEG by hand is not worth it for
a test double, and only the simulator needs it; the client never imports this module.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bambu_lan.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

WIDTH, HEIGHT = 1280, 720

PILLOW_HINT = "install the simulator's extra: pip install 'bambu-lan[sim]' (it adds Pillow)"


def pillow_available() -> bool:
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return False
    return True


def require_pillow() -> None:
    if not pillow_available():
        raise ConfigError(
            "the simulated camera draws its pictures with Pillow, which is not installed",
            hint=PILLOW_HINT,
        )


def _clock(seconds: float) -> str:
    minutes = int(seconds) // 60
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


class FrameRenderer:
    """Draws one frame from the printer model's ``print`` object (its public ``state``)."""

    def __init__(self, product_name: str, serial: str, *, quality: int = 75) -> None:
        require_pillow()
        from PIL import ImageFont

        self.product_name = product_name
        self.serial = serial
        self.quality = quality
        self._big = ImageFont.load_default(size=44)
        self._small = ImageFont.load_default(size=28)

    def render(self, state: Mapping[str, Any], now: float | None = None) -> bytes:
        """The frame as a JPEG (the A1/P1 camera's pictures)."""
        out = io.BytesIO()
        self.draw(state, now).save(out, "JPEG", quality=self.quality)  # JFIF: FF D8 FF E0
        return out.getvalue()

    def render_rgb(self, state: Mapping[str, Any], now: float | None = None) -> bytes:
        """The frame as raw 24-bit RGB, WIDTH×HEIGHT (what the RTSPS camera's encoder reads)."""
        return self.draw(state, now).tobytes()

    def draw(self, state: Mapping[str, Any], now: float | None = None) -> Image.Image:
        from PIL import Image, ImageDraw

        now = time.time() if now is None else now
        img = Image.new("RGB", (WIDTH, HEIGHT), (28, 31, 36))
        draw = ImageDraw.Draw(img)
        gcode_state = str(state.get("gcode_state", "IDLE"))
        percent = _number(state.get("mc_percent"))
        layer = int(_number(state.get("layer_num")))
        layers = int(_number(state.get("total_layer_num")))
        remaining = _number(state.get("mc_remaining_time")) * 60
        job = str(state.get("subtask_name") or "no job")[:60]

        # The bed, and a print whose height follows the progress.
        draw.rectangle((240, 600, 1040, 630), fill=(70, 74, 82))
        height = int(360 * percent / 100)
        if height:
            draw.rectangle((520, 600 - height, 760, 600), fill=(0, 174, 66))
        head_y = 600 - height - 40
        draw.rectangle((600, head_y - 50, 680, head_y), fill=(200, 200, 200))
        draw.polygon([(630, head_y), (650, head_y), (640, head_y + 20)], fill=(230, 120, 40))

        clock = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        draw.text((32, 24), f"{self.product_name}   {self.serial}", font=self._big, fill="white")
        draw.text((32, 84), f"{gcode_state}   {job}", font=self._small, fill=(220, 220, 220))
        draw.text(
            (32, 124),
            f"{percent:.0f} %   layer {layer}/{layers}   {_clock(remaining)} left",
            font=self._small,
            fill=(220, 220, 220),
        )
        draw.text((32, 660), f"{clock}  (simulated camera)", font=self._small, fill=(160, 160, 160))
        draw.rectangle((32, 170, 32 + int(12.16 * percent), 182), fill=(0, 174, 66))
        return img


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
