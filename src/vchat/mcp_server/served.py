"""The session a server runs: a normal vchat Session that keeps each call's new images in memory for previews."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PIL import Image

from vchat.images import ImageRef
from vchat.session import Session


class ServedSession(Session):
    """Outputs are written exactly as in a chat; the images also stay in memory until the call's result is built.

    A preview made from memory skips decoding the PNG that was just written.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fresh: dict[str, Image.Image] = {}

    def save_image(
        self,
        image: Image.Image,
        *,
        tool: str,
        params: Mapping[str, Any],
        parents: tuple[str, ...],
        seed: int | None = None,
    ) -> ImageRef:
        """Write the output (Session.save_image) and keep the image for the preview."""
        ref = super().save_image(image, tool=tool, params=params, parents=parents, seed=seed)
        if image.mode in ("RGB", "RGBA", "L"):  # other modes are normalised on write: preview the file then
            self.fresh[ref.handle] = image
        return ref
