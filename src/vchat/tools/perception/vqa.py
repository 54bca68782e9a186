"""answer_question: a short answer to a question about an image (BLIP visual question answering)."""

from __future__ import annotations

from typing import Any

from vchat.errors import ToolError
from vchat.tools.base import Field, Tool, ToolContext, ToolResult
from vchat.tools.util import clean_text, inputs_for, rgb

KEYS = ("blip_vqa", "blip_vqa.processor")
MAX_NEW_TOKENS = 20


class AnswerQuestion(Tool):
    """Answer a question about an image in a word or a few."""

    name = "answer_question"
    brief = "short answer to one simple question about an image"
    description = (
        "Answer a question about an image (what colour, how many, is there…). Ask one simple question at a time; "
        "returns a short text answer."
    )
    inputs = (
        Field("image", "image", "the image the question is about"),
        Field("question", "text", "the question, in English"),
    )
    output = "text"
    components = KEYS

    def run(self, ctx: ToolContext, **args: Any) -> ToolResult:
        """Ask BLIP; an empty answer is reported as such."""
        import torch

        ref = args["image"]
        question = " ".join(str(args["question"]).split())
        if not question:
            raise ToolError("the question is empty")
        picture = rgb(ctx.load_image(ref))

        def run(parts: Any) -> str:
            processor = parts["blip_vqa.processor"]
            batch = processor(images=picture, text=question, truncation=True, return_tensors="pt")
            with torch.inference_mode():
                ids = parts["blip_vqa"].generate(**inputs_for(batch, parts, "blip_vqa"), max_new_tokens=MAX_NEW_TOKENS)
            return clean_text(processor.decode(ids[0], skip_special_tokens=True))

        outcome = ctx.models.run(run, *KEYS, tool=self.name)
        if not outcome.value:
            return ToolResult(
                f"The question-answering model gave no answer about {ref.handle}.", degraded=outcome.degraded
            )
        return ToolResult(f"Answer about {ref.handle}: {outcome.value}", degraded=outcome.degraded)
