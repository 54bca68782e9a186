"""The Tool contract: class-level name, description, typed inputs and output, and `run`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from PIL import Image

    from vchat.config import Settings
    from vchat.runtime.manager import ModelManager
    from vchat.store.refs import ImageRef


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# Field kinds a tool may declare; "image" fields take a session image name, "images" a list of them (`maximum`
# caps how many).
FieldKind = Literal["image", "images", "text", "int", "float", "bool", "choice"]
FIELD_KINDS: tuple[FieldKind, ...] = ("image", "images", "text", "int", "float", "bool", "choice")


@dataclass(frozen=True)
class Field:
    """One declared input of a tool."""

    name: str
    kind: FieldKind
    description: str
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"field {self.name}: unknown kind {self.kind!r}")

    @property
    def required(self) -> bool:
        """True when the model must give this field."""
        return self.default is REQUIRED

    def describe(self, with_default: bool = True) -> str:
        """How the field reads in the system prompt and in `vchat tools`."""
        kind: str = "image name" if self.kind == "image" else self.kind
        if self.kind == "choice":
            kind = " | ".join(self.choices)
        extra = ""
        if self.kind == "images":
            kind = "list of image names" + (f", at most {self.maximum:g}" if self.maximum is not None else "")
        elif self.minimum is not None or self.maximum is not None:
            lo = "" if self.minimum is None else f"{self.minimum:g}"
            hi = "" if self.maximum is None else f"{self.maximum:g}"
            extra = f", {lo}..{hi}"
        default = "" if self.required or not with_default else f", default {self.default!r}"
        return f"{self.name} ({kind}{extra}{default}): {self.description}"


@dataclass
class ToolResult:
    """What a tool returns: the observation text and the images it produced."""

    text: str
    images: list[ImageRef] = field(default_factory=list)
    degraded: str | None = None  # e.g. "ran on CPU: not enough GPU memory"


ProgressCallback = Callable[[int, int, str], None]


class ToolContext(Protocol):
    """What a running tool may use: the session's images, settings, models and progress."""

    settings: Settings

    def load_image(self, ref: ImageRef) -> Image.Image:
        """Open a known image (validated)."""
        ...

    def save_image(
        self,
        image: Image.Image,
        *,
        tool: str,
        params: Mapping[str, Any],
        parents: tuple[str, ...],
        seed: int | None = None,
    ) -> ImageRef:
        """Write an output image into the session folder; returns its new handle."""
        ...

    def progress(self, done: int, total: int, label: str) -> None:
        """Report progress of long work (denoising steps, loading)."""
        ...

    def check_cancelled(self) -> None:
        """Raise vchat.errors.Cancelled when the user pressed Ctrl-C."""
        ...

    @property
    def models(self) -> ModelManager:
        """The ModelManager (runtime); only tools with components use it."""
        ...


class Tool:
    """Base class: subclasses set the class data and implement `run`."""

    name: ClassVar[str]
    description: ClassVar[str]
    inputs: ClassVar[tuple[Field, ...]] = ()
    output: ClassVar[str] = "image"  # image | text
    components: ClassVar[tuple[str, ...]] = ()  # runtime component keys the tool needs
    # One short line for the system prompt (every token is paid on every step); "" uses `description`.
    brief: ClassVar[str] = ""

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Do the work; raise vchat.errors.ToolError for failures the model should hear."""
        raise NotImplementedError

    @classmethod
    def validate(cls, bound: dict[str, Any]) -> dict[str, Any]:
        """Check bound inputs as a whole (after each field was coerced); families pick their member here."""
        return bound

    @classmethod
    def field(cls, name: str) -> Field | None:
        """The declared field with this name."""
        return next((f for f in cls.inputs if f.name == name), None)

    @classmethod
    def signature(cls) -> str:
        """`name(field, field=default)` as shown to users."""
        parts = [f.name if f.required else f"{f.name}={f.default!r}" for f in cls.inputs]
        return f"{cls.name}({', '.join(parts)})"

    @classmethod
    def spec(cls) -> str:
        """The tool as described in the system prompt (stable text: cached by providers)."""
        lines = [f"{cls.name}: {cls.description}"]
        if cls.inputs:
            lines.extend(f"    - {f.describe()}" for f in cls.inputs)
        else:
            lines.append("    (no input)")
        return "\n".join(lines)


T = TypeVar("T", type[Tool], Tool)


def _cls(tool: type[Tool] | Tool) -> type[Tool]:
    return tool if isinstance(tool, type) else type(tool)


def offered(tools: Iterable[T]) -> list[T]:
    """The tools the model is told about: a family (a tool with `members`) hides its members.

    Hidden members stay callable by their own names: that is how old names keep working.
    """
    listed = list(tools)
    hidden = {member.name for tool in listed for member in getattr(_cls(tool), "members", {}).values()}
    return [tool for tool in listed if _cls(tool).name not in hidden]
