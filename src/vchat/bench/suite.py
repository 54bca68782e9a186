"""The built-in suite: the pictures and the tasks, written for vchat's capabilities (see CATEGORIES)."""

from __future__ import annotations

from vchat.bench.scenes import DANCER, HOUSE, LAKE, PARK, PORTRAIT, SKETCH, STREET, TABLE
from vchat.bench.suite_honesty import honesty_tasks
from vchat.bench.suite_images import look_first_tasks, multi_image_tasks, reference_tasks
from vchat.bench.tasks import Plan, Task, expect

E = expect


def _map_then(kind: str, prompt_word: str) -> tuple[Plan, Plan]:
    """Generate from a map: straight from the photo (the tool detects the map) or map first, then generate."""
    return (
        (E(f"from_map:{kind}", prompt=prompt_word),),
        (E(f"map:{kind}"), E(f"from_map:{kind}", "img2", prompt=prompt_word)),
    )


def _plain_tasks() -> list[Task]:
    tasks = [
        Task(
            "caption",
            "plain",
            "What does this picture show?",
            ((E("caption"),), (E("vqa"),)),
            "img1 shows a red car parked on a city street next to a tree.",
            (STREET,),
            answer_words=("car",),
        ),
        Task(
            "vqa",
            "plain",
            "What colour is the car in this photo?",
            ((E("vqa", question=("colo", "car")),), (E("caption"),)),
            "The car in img1 is red.",
            (STREET,),
            answer_words=("red",),
        ),
        Task(
            "generate",
            "plain",
            "Make a picture of a lighthouse on a cliff at night.",
            ((E("generate", None, prompt="lighthouse"),),),
            "Here is the lighthouse at night: img1.",
        ),
        Task(
            "edit",
            "plain",
            "Make this photo look like winter.",
            ((E("edit", instruction=("winter", "snow")),),),
            "Here is the winter version: img2.",
            (STREET,),
        ),
        Task(
            "remove-object",
            "plain",
            "Remove the car from this photo.",
            ((E("remove_object", object="car"),),),
            "The car is gone in img2.",
            (STREET,),
        ),
        Task(
            "replace-object",
            "plain",
            "Replace the vase with a teapot.",
            ((E("replace_object", object="vase", replacement="teapot"),),),
            "The vase is now a teapot: img2.",
            (TABLE,),
        ),
        Task(
            "detect",
            "plain",
            "Find the dog in this picture and show me where it is.",
            ((E("detect", text="dog"),), (E("segment_object", text="dog", eq_output="overlay"),)),
            "The dog is at 300,300-620,600; img2 shows the box.",
            (PARK,),
        ),
        Task(
            "segment-object",
            "plain",
            "Cut out the woman onto a transparent background.",
            ((E("segment_object", text=("woman", "person"), eq_output="cutout"),), (E("remove_background"),)),
            "Here is the woman on a transparent background: img2.",
            (PORTRAIT,),
        ),
        Task(
            "segment-anything",
            "plain",
            "Split this picture into all its regions.",
            ((E("segment_anything"),), (E("map:segmentation"),)),
            "img2 shows every region in its own colour.",
            (HOUSE,),
        ),
        Task(
            "remove-background",
            "plain",
            "Remove the background of this portrait.",
            ((E("remove_background"),), (E("segment_object", text=("woman", "person"), eq_output="cutout"),)),
            "Done: img2 has a transparent background.",
            (PORTRAIT,),
        ),
        Task(
            "extend",
            "plain",
            "Extend this landscape to the left and to the right.",
            ((E("extend", eq_direction="horizontal"),),),
            "Here is the wider landscape: img2.",
            (LAKE,),
        ),
    ]
    maps = [
        ("canny", "Show me the canny edges of this photo.", STREET),
        ("lines", "Detect the straight lines in this photo of a house.", HOUSE),
        ("hed", "Make a soft HED edge map of this picture.", STREET),
        ("scribble", "Turn this photo into a rough scribble of its outlines.", HOUSE),
        ("pose", "Detect the pose of the dancer.", DANCER),
        ("depth", "Estimate the depth of this photo.", PARK),
        ("normal", "Make a normal map of this photo.", PORTRAIT),
        ("segmentation", "Label every region of this photo with its scene class (semantic segmentation).", HOUSE),
    ]
    for kind, prompt, scene in maps:
        tasks.append(Task(f"map-{kind}", "plain", prompt, ((E(f"map:{kind}"),),), "Here it is: img2.", (scene,)))
    from_maps = [
        ("canny", "Generate a futuristic city that follows the canny edges of this photo.", "city", STREET),
        ("lines", "Use the straight lines of this house photo to generate a modern glass building.", "glass", HOUSE),
        ("hed", "Generate an oil painting of a forest cabin from the soft HED edges of this photo.", "cabin", HOUSE),
        ("scribble", "This is my sketch: turn the scribble into a realistic photo of a house.", "house", SKETCH),
        ("pose", "Generate an astronaut in exactly the same pose as this dancer.", "astronaut", DANCER),
        ("depth", "Generate a snowy mountain village with the same depth layout as this photo.", "village", PARK),
        ("normal", "Generate a marble statue that follows the surface normals of this portrait.", "marble", PORTRAIT),
        (
            "segmentation",
            "Generate a fantasy castle from the semantic segmentation layout of this photo.",
            "castle",
            HOUSE,
        ),
    ]
    for kind, prompt, word, scene in from_maps:
        tasks.append(
            Task(f"from-{kind}", "plain", prompt, _map_then(kind, word), "Here is the new picture: img2.", (scene,))
        )
    tasks += [
        Task(
            "resize",
            "plain",
            "Resize this photo to 320 pixels wide.",
            ((E("transform:resize", eq_width=320),), (E("transform:resize", eq_scale=0.5),)),
            "Resized: img2 is 320x240.",
            (STREET,),
        ),
        Task(
            "crop",
            "plain",
            "Crop this photo to its left half.",
            ((E("transform:crop", eq_left=0, eq_top=0, eq_right=320, eq_bottom=480),),),
            "img2 is the left half.",
            (STREET,),
        ),
        Task(
            "rotate",
            "plain",
            "Rotate this photo 90 degrees clockwise.",
            ((E("transform:rotate", eq_degrees=-90),), (E("transform:rotate", eq_degrees=270),)),
            "Rotated: img2.",
            (STREET,),
        ),
        Task(
            "flip",
            "plain",
            "Mirror this photo left to right.",
            ((E("transform:flip", eq_direction="horizontal"),),),
            "Mirrored: img2.",
            (PARK,),
        ),
        Task(
            "grayscale",
            "plain",
            "Make this photo black and white.",
            ((E("transform:grayscale"),),),
            "Here it is in black and white: img2.",
            (TABLE,),
        ),
    ]
    return tasks


def _chain_tasks() -> list[Task]:
    return [
        Task(
            "edit-then-edges",
            "chain",
            "Make this photo look like winter, then draw a new picture of a castle from the edges of the result.",
            (
                (E("edit", instruction=("winter", "snow")), E("from_map:canny", "img2", prompt="castle")),
                (
                    E("edit", instruction=("winter", "snow")),
                    E("map:canny", "img2"),
                    E("from_map:canny", "img3", prompt="castle"),
                ),
            ),
            "img2 is the winter photo and img3 the castle drawn from its edges.",
            (STREET,),
        ),
        Task(
            "detect-then-remove",
            "chain",
            "Find the cars in this photo, then remove them.",
            ((E("detect", text="car"), E("remove_object", object="car")), (E("remove_object", object="car"),)),
            "I found one car (img2 shows it) and removed it: img3.",
            (STREET,),
        ),
        Task(
            "depth-then-generate",
            "chain",
            "Make a depth map of this photo and then use it to generate a futuristic city.",
            (
                (E("map:depth"), E("from_map:depth", "img2", prompt="city")),
                (E("map:depth"), E("from_map:depth", "img1", prompt="city")),
            ),
            "img2 is the depth map and img3 the city generated from it.",
            (STREET,),
        ),
        Task(
            "cutout-then-gray",
            "chain",
            "Remove the background of this portrait and then make the result black and white.",
            (
                (E("remove_background"), E("transform:grayscale", "img2")),
                (E("segment_object", text=("woman", "person"), eq_output="cutout"), E("transform:grayscale", "img2")),
            ),
            "img3 is the cut-out portrait in black and white.",
            (PORTRAIT,),
        ),
        Task(
            "remove-night-extend",
            "chain",
            "Remove the car, make the result look like night, then extend it to the left.",
            (
                (
                    E("remove_object", object="car"),
                    E("edit", "img2", instruction="night"),
                    E("extend", "img3", eq_direction="left"),
                ),
            ),
            "Done: img2 without the car, img3 at night, img4 extended to the left.",
            (STREET,),
        ),
        Task(
            "resize-edges-paint",
            "chain",
            "Resize this photo to 512 pixels wide, trace its canny edges, then generate a watercolor painting "
            "from those edges.",
            tuple(
                (E("transform:resize", **size), E("map:canny", "img2"), E("from_map:canny", "img3", prompt="watercolo"))
                for size in ({"eq_width": 512}, {"eq_scale": 0.8})
            ),
            "img2 is 512 wide, img3 its edges and img4 the watercolor.",
            (STREET,),
        ),
    ]


def builtin_tasks() -> list[Task]:
    """Every task of the built-in suite, in category order."""
    return [
        *_plain_tasks(),
        *_chain_tasks(),
        *reference_tasks(),
        *multi_image_tasks(),
        *look_first_tasks(),
        *honesty_tasks(),
    ]
