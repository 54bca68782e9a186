"""Tasks about several images: references between turns, more than one input, and looking before acting."""

from __future__ import annotations

from vchat.bench.scenes import LAKE, PARK, PORTRAIT, STREET, TABLE
from vchat.bench.suite_honesty import WINTER
from vchat.bench.tasks import Expect, Plan, Scene, Task, Turn, expect

E = expect


def reference_tasks() -> list[Task]:
    """Tasks that refer back to images made or named in earlier turns."""
    cutout: tuple[Plan, ...] = (
        (E("remove_background"),),
        (E("segment_object", text=("woman", "person"), eq_output="cutout"),),
    )
    return [
        Task(
            "it",
            "reference",
            "Now remove the car from it.",
            ((E("remove_object", "img2", object="car"),),),
            "The car is gone: img3.",
            (STREET,),
            (WINTER,),
        ),
        Task(
            "first-one",
            "reference",
            "Make the first one black and white.",
            ((E("transform:grayscale", "img1"),),),
            "img3 is the cat picture in black and white.",
            (),
            (
                Turn(
                    "Make two pictures: a cat on a sofa, then a dog on a beach.",
                    (E("generate", None, prompt="a cat on a sofa"), E("generate", None, prompt="a dog on a beach")),
                    "img1 is the cat, img2 the dog.",
                ),
            ),
        ),
        Task(
            "one-before",
            "reference",
            "Undo that: take the one before and give it a sunset sky instead.",
            (
                (E("edit", "img2", instruction="sunset"),),
                (E("replace_object", "img2", object="sky", replacement="sunset"),),
            ),
            "img4 is the winter photo with a sunset sky.",
            (STREET,),
            (
                WINTER,
                Turn(
                    "Now make it look like night.",
                    (E("edit", "img2", instruction="night"),),
                    "Here it is at night, img3.",
                ),
            ),
        ),
        Task(
            "it-after-caption",
            "reference",
            "Flip it horizontally.",
            ((E("transform:flip", eq_direction="horizontal"),),),
            "Flipped: img2.",
            (PARK,),
            (Turn("What is in this picture?", (E("caption"),), "img1 shows a brown dog running in a park."),),
        ),
        Task(
            "the-original",
            "reference",
            "Remove the background of the original photo.",
            cutout,
            "img3 is the original portrait without its background.",
            (PORTRAIT,),
            (
                Turn(
                    "Make it look like a watercolor painting.",
                    (E("edit", instruction="watercolor"),),
                    "Here is the watercolor version, img2.",
                ),
            ),
        ),
    ]


def multi_image_tasks() -> list[Task]:
    """Tasks over more than one input image."""
    listed_lake = Scene(LAKE.file, LAKE.caption, LAKE.size, answers=LAKE.answers, listed_caption=True)
    listed_portrait = Scene(
        PORTRAIT.file, PORTRAIT.caption, PORTRAIT.size, objects=PORTRAIT.objects, listed_caption=True
    )
    return [
        Task(
            "second-image",
            "multi-image",
            "Trace the canny edges of the second image.",
            ((E("map:canny", "img2"),),),
            "Here are the edges of img2: img3.",
            (STREET, PARK),
        ),
        Task(
            "describe-both",
            "multi-image",
            "Describe both images.",
            ((E("caption", "img1"), E("caption", "img2")), (E("caption", "img2"), E("caption", "img1"))),
            "img1 shows a red car on a street; img2 a blue vase of flowers on a table.",
            (STREET, TABLE),
            answer_words=("car", "vase"),
        ),
        Task(
            "by-content",
            "multi-image",
            "Remove the background from the portrait.",
            (
                (E("remove_background", "img2"),),
                (E("segment_object", "img2", text=("woman", "person"), eq_output="cutout"),),
            ),
            "img3 is the portrait without its background.",
            (listed_lake, listed_portrait),
        ),
        Task(
            "third-picture",
            "multi-image",
            "Replace the vase in the third picture with a stack of books.",
            ((E("replace_object", "img3", object="vase", replacement="book"),),),
            "img4 has a stack of books instead of the vase.",
            (STREET, PARK, TABLE),
        ),
    ]


def _looks(question: str, *then: Expect) -> tuple[Plan, ...]:
    """Look first in any of three ways (question, caption, detection), then do the rest."""
    return (
        (E("vqa", question=question), *then),
        (E("caption"), *then),
        (E("detect", text=question), *then),
    )


def look_first_tasks() -> list[Task]:
    """Tasks where the planner must look at the image before it acts."""
    return [
        Task(
            "dog-present",
            "look-first",
            "If there is a dog in this photo, remove it; otherwise just tell me.",
            _looks("dog", E("remove_object", object="dog")),
            "There was a dog; it is removed in img2.",
            (PARK,),
        ),
        Task(
            "dog-absent",
            "look-first",
            "If there is a dog in this photo, remove it; otherwise just tell me.",
            _looks("dog"),
            "There is no dog in img1, so I changed nothing.",
            (LAKE,),
            honesty="absent",
        ),
        Task(
            "on-the-table",
            "look-first",
            "Turn whatever is on the table into a birthday cake.",
            (
                (E("vqa", question="table"), E("replace_object", object="vase", replacement="cake")),
                (E("caption"), E("replace_object", object="vase", replacement="cake")),
                (E("vqa", question="table"), E("replace_object", object="flower", replacement="cake")),
                (E("caption"), E("replace_object", object="flower", replacement="cake")),
            ),
            "The vase on the table is now a birthday cake: img2.",
            (TABLE,),
        ),
    ]
