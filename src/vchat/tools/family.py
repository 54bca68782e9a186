"""Tool families: one tool the model sees for several capabilities picked by one word (`kind`, `op`).

The model chooses among 14 tools instead of 32 and the system prompt says shared things once;
each member stays a plain Tool (its own name, inputs, outputs, file names), callable directly
under its old name, which is how old names keep working as aliases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from vchat.errors import ToolInputError
from vchat.tools.base import Field, Tool, ToolContext, ToolResult


def family_inputs(image: Field, selector: Field, members: Mapping[str, type[Tool]]) -> tuple[Field, ...]:
    """The family's fields: the image, the selector, then every member field once.

    A field every member declares alike keeps its default (and stays required if it is);
    a field only some members have gets default None, meaning "not given": the chosen
    member's own default or requirement applies when the call is bound.
    """
    classes = list(members.values())
    fields: dict[str, Field] = {}
    for cls in classes:
        for spec in cls.inputs:
            if spec.kind == "image" or spec.name in fields:
                continue
            everywhere = all(spec in other.inputs for other in classes)
            fields[spec.name] = spec if everywhere else _optional(spec)
    return (image, selector, *fields.values())


def _optional(spec: Field) -> Field:
    return Field(spec.name, spec.kind, spec.description, None, spec.choices, spec.minimum, spec.maximum)


class ToolFamily(Tool):
    """A tool that dispatches to one member capability chosen by its `selector` field."""

    selector: ClassVar[str]  # the field that picks the member ("kind", "op")
    members: ClassVar[dict[str, type[Tool]]]  # selector value -> capability tool

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A family needs what any of its members needs: derived, so it cannot drift from the members.
        if "members" in cls.__dict__:
            cls.components = tuple(dict.fromkeys(c for tool in cls.members.values() for c in tool.components))

    def __init__(self) -> None:
        self._instances: dict[str, Tool] = {}

    @classmethod
    def member_for(cls, choice: str) -> type[Tool]:
        """The capability a selector value names."""
        return cls.members[choice]

    @classmethod
    def choice_of(cls, member_name: str) -> str | None:
        """The selector value that picks the member with this tool name, if it is one."""
        return next((key for key, tool in cls.members.items() if tool.name == member_name), None)

    @classmethod
    def validate(cls, bound: dict[str, Any]) -> dict[str, Any]:
        """Keep the chosen member's inputs, fill its defaults, refuse inputs it does not take."""
        choice = bound.get(cls.selector)
        if choice not in cls.members:
            raise ToolInputError(f"{cls.name}: {cls.selector} must be one of {', '.join(cls.members)}")
        member = cls.members[choice]
        own = {f.name for f in member.inputs}
        foreign = [k for k, v in bound.items() if v is not None and k != cls.selector and k not in own]
        if foreign:
            raise ToolInputError(
                f"{cls.name} {cls.selector}={choice} takes no {', '.join(foreign)}; it takes {', '.join(own)}"
            )
        args = {k: v for k, v in bound.items() if k in own and v is not None}
        missing = [f.name for f in member.inputs if f.required and f.name not in args]
        if missing:
            raise ToolInputError(f"{cls.name} {cls.selector}={choice} needs {', '.join(missing)}")
        for spec in member.inputs:
            args.setdefault(spec.name, spec.default)
        return {cls.selector: choice, **args}

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Run the chosen member with its own inputs (its outputs carry its own tool name)."""
        bound = self.validate(dict(args))
        choice = bound.pop(self.selector)
        if choice not in self._instances:
            self._instances[choice] = self.members[choice]()
        return self._instances[choice].run(ctx, **bound)
