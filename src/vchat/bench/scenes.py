"""The bench's pictures: what each shows, where its objects are, what a question about it gets."""

from __future__ import annotations

from vchat.bench.tasks import Scene

STREET = Scene(
    "street.jpg",
    "a red car parked on a city street next to a tree",
    (640, 480),
    objects={"car": ((120, 220, 380, 400),), "tree": ((450, 40, 600, 430),)},
    answers=((r"colou?r", "red"), (r"how many", "1"), (r"\bcar", "yes")),
)
TABLE = Scene(
    "table.jpg",
    "a blue vase of flowers on a wooden table",
    (800, 600),
    objects={"vase": ((330, 120, 470, 420),), "flowers": ((300, 40, 500, 200),), "table": ((0, 380, 800, 600),)},
    answers=((r"colou?r", "blue"), (r"what|which", "a vase")),
)
PARK = Scene(
    "park.jpg",
    "a brown dog running on the grass in a park",
    (1024, 768),
    objects={"dog": ((300, 300, 620, 600),)},
    answers=((r"dog|animal", "yes"), (r"colou?r", "brown")),
)
LAKE = Scene("lake.jpg", "a mountain lake at sunrise", (768, 512), answers=((r"dog|animal|person|people", "no"),))
PORTRAIT = Scene(
    "portrait.png",
    "a woman in a yellow coat standing in front of a brick wall",
    (512, 768),
    objects={"woman": ((120, 80, 400, 760),), "person": ((120, 80, 400, 760),)},
)
DANCER = Scene(
    "dancer.jpg",
    "a dancer jumping in a bright studio",
    (512, 512),
    objects={"dancer": ((140, 40, 380, 500),), "person": ((140, 40, 380, 500),)},
)
HOUSE = Scene(
    "house.jpg",
    "a white house with a wooden fence under a blue sky",
    (640, 640),
    objects={"house": ((80, 120, 560, 520),), "fence": ((0, 480, 640, 600),)},
)
SKETCH = Scene("sketch.png", "a black line drawing of a house on a white background", (512, 512), mode="L")
