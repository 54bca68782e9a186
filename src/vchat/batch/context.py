"""The ToolContext one batch image runs in: its decoded input in memory, outputs handed to the writer pool."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from vchat.batch.inputs import Item
from vchat.batch.job import INPUT_HANDLE
from vchat.config import Settings
from vchat.errors import Cancelled, UnknownImageError
from vchat.store.images import ImageRef
from vchat.store.reading import normalise_mode

if TYPE_CHECKING:
    from vchat.runtime.manager import ModelManager

# (relative output path, image, PNG record) -> a future of (relative path, PNG bytes or None when written)
WriteFn = Callable[[str, Image.Image, dict[str, Any]], "Future[tuple[str, bytes | None]]"]


def output_name(item: Item, number: int) -> str:
    """`cat.png` for an image's first output, `cat-2.png`, `cat-3.png` … for more."""
    return f"{item.name}.png" if number == 1 else f"{item.name}-{number}.png"


class ItemContext:
    """Implements the ToolContext protocol for one input, the same contract a Session gives tools."""

    def __init__(
        self,
        settings: Settings,
        models: Callable[[], Any],
        item: Item,
        image: Image.Image,
        out: Path,
        write: WriteFn,
        cancelled: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self._models = models
        self._write = write
        self._cancelled = cancelled
        self.item = item
        self.out = out
        source = ImageRef(INPUT_HANDLE, Path(item.input), source=item.input, width=image.width, height=image.height)
        source.mode = image.mode
        self.refs: dict[str, ImageRef] = {INPUT_HANDLE: source}
        self._pixels: dict[str, Image.Image] = {INPUT_HANDLE: image}
        self._given: set[str] = set()
        self.outputs: list[str] = []
        self.writes: list[Future[tuple[str, bytes | None]]] = []
        self.seed: int | None = None

    @property
    def models(self) -> ModelManager:
        """The worker's one model manager: weights stay loaded from one image to the next."""
        return self._models()

    def resolve(self, name: str) -> ImageRef:
        """Only this image and what the tool made from it can be named."""
        ref = self.refs.get(name.strip().strip("\"'`").lower())
        if ref is None:
            raise UnknownImageError(f"unknown image {name!r}; in a batch the input is {INPUT_HANDLE}")
        return ref

    def load_image(self, ref: ImageRef) -> Image.Image:
        """The pixels already decoded: handed over the first time, a copy after (a tool may change what it gets)."""
        if ref.handle in self._given:
            return self._pixels[ref.handle].copy()
        self._given.add(ref.handle)
        return self._pixels[ref.handle]

    def save_image(
        self,
        image: Image.Image,
        *,
        tool: str,
        params: Mapping[str, Any],
        parents: tuple[str, ...],
        seed: int | None = None,
    ) -> ImageRef:
        """Queue an output for encoding and writing on the writer pool; the tool goes on at once."""
        if image.mode not in ("RGB", "RGBA", "L"):
            image = normalise_mode(image)
        number = len(self.outputs) + 1
        relative = output_name(self.item, number)
        handle = f"img{number + 1}"
        ref = ImageRef(handle, self.out / relative, tuple(parents), tool, dict(params), seed)
        ref.width, ref.height = image.size
        ref.mode = image.mode
        record = ref.to_dict()
        record["path"] = relative
        record["lineage"] = self._lineage(parents)
        record["sources"] = {INPUT_HANDLE: self.item.input}  # lineage back to the batch's input file
        self.refs[handle] = ref
        self._pixels[handle] = image
        self._given.add(handle)  # the writer thread encodes this very object: later loads get copies
        self.outputs.append(relative)
        self.writes.append(self._write(relative, image, record))
        if self.seed is None:
            self.seed = seed
        return ref

    def _lineage(self, parents: tuple[str, ...]) -> list[str]:
        seen: list[str] = []
        queue = list(parents)
        while queue:
            ref = self.refs.get(queue.pop(0).lower())
            if ref is not None and ref.handle not in seen:
                seen.append(ref.handle)
                queue.extend(ref.parents)
        return seen

    def progress(self, done: int, total: int, label: str) -> None:
        """Per-image progress is not shown (the batch bar counts images); a stop request ends the tool."""
        self.check_cancelled()

    def check_cancelled(self) -> None:
        """Raise Cancelled once the batch is being stopped."""
        if self._cancelled():
            raise Cancelled("cancelled")
