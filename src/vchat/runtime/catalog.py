"""The component registry: default checkpoints per model key, and how each component (`sd15.unet`, …) loads."""

from __future__ import annotations

from dataclasses import dataclass

# Model keys (the `[models]` table) and their default Hugging Face ids; see DESIGN.md.
DEFAULT_MODELS: dict[str, str] = {
    "sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sd15_inpaint": "stable-diffusion-v1-5/stable-diffusion-inpainting",
    "pix2pix": "timbrooks/instruct-pix2pix",
    "controlnet_canny": "lllyasviel/sd-controlnet-canny",
    "controlnet_mlsd": "lllyasviel/sd-controlnet-mlsd",
    "controlnet_hed": "lllyasviel/sd-controlnet-hed",
    "controlnet_scribble": "lllyasviel/sd-controlnet-scribble",
    "controlnet_openpose": "lllyasviel/sd-controlnet-openpose",
    "controlnet_seg": "lllyasviel/sd-controlnet-seg",
    "controlnet_depth": "lllyasviel/sd-controlnet-depth",
    "controlnet_normal": "lllyasviel/sd-controlnet-normal",
    "blip_caption": "Salesforce/blip-image-captioning-base",
    "blip_vqa": "Salesforce/blip-vqa-base",
    "clipseg": "CIDAS/clipseg-rd64-refined",
    "depth": "Intel/dpt-hybrid-midas",
    "segmentation": "openmmlab/upernet-convnext-small",
    "annotators": "lllyasviel/Annotators",
    "grounding_dino": "IDEA-Research/grounding-dino-tiny",
    "sam": "facebook/sam-vit-base",
    # The current tier's models (see TIER_MODELS): FLUX.2 [klein] for generation and editing, SAM 3 for text-prompted
    # detection and masks, Depth Anything V2 for depth. The Small depth model is the one under Apache-2.0 (Base and
    # Large are CC-BY-NC-4.0); `[models] depth_anything` may name a larger one.
    "flux2_klein": "black-forest-labs/FLUX.2-klein-4B",
    "sam3": "facebook/sam3",
    "depth_anything": "depth-anything/Depth-Anything-V2-Small-hf",
    # The built-in planner; on a GPU or Apple MPS the larger PLANNER_ACCELERATOR is the default instead.
    "planner": "Qwen/Qwen3.5-0.8B",
}

PLANNER_ACCELERATOR = "Qwen/Qwen3.5-2B"
# Approximate download sizes (bf16 safetensors plus processor files), for the first-use notice.
DOWNLOAD_SIZES = {"Qwen/Qwen3.5-0.8B": "1.8 GB", "Qwen/Qwen3.5-2B": "4.6 GB"}


def planner_default(device: str) -> str:
    """The default planner checkpoint for a compute device: the 2B where there is a GPU or MPS, else the 0.8B."""
    return DEFAULT_MODELS["planner"] if device == "cpu" else PLANNER_ACCELERATOR


# Model keys only the current tier uses; every other key serves both tiers or only the classic one (CLASSIC_ONLY).
CURRENT_ONLY = ("flux2_klein", "sam3", "depth_anything")
# Classic models the current tier replaces. The rest serve both: the SD 1.5 base (the ControlNet tools have no
# current counterpart), BLIP (it answers when the planner cannot see images), DPT (the normal ControlNet was trained
# on MiDaS-style normals), CLIPSeg and SAM (background removal, segment_anything).
CLASSIC_ONLY = ("sd15_inpaint", "pix2pix", "grounding_dino")
TIER_NAMES = ("classic", "current")


def tier_models(tier: str) -> tuple[str, ...]:
    """The model keys a tier uses, in catalog order (the planner included: it runs beside the tools)."""
    left_out = CURRENT_ONLY if tier == "classic" else CLASSIC_ONLY
    return tuple(key for key in DEFAULT_MODELS if key not in left_out)


CONTROLNETS = tuple(key for key in DEFAULT_MODELS if key.startswith("controlnet_"))

# Kinds of component: weights move between devices and count against budgets; the rest stay on CPU, free.
WEIGHTS, AUX, SCHEDULER = "weights", "aux", "scheduler"


@dataclass(frozen=True)
class ComponentSpec:
    """One loadable part of a model: its class, where it sits in the checkpoint, and its residency defaults.

    `files` lists groups of alternatives (glob patterns, relative to the model root) the component needs; a
    leading `?` marks a group as optional. `core` components (the shared SD base) are evicted last;
    `device` = "cpu" keeps a detector on CPU unless a tool's policy says otherwise.
    """

    key: str
    model: str
    loader: str  # "module:Class"; the class's from_pretrained loads it
    subfolder: str | None = None
    kind: str = WEIGHTS
    files: tuple[tuple[str, ...], ...] = ()
    core: bool = False
    fp16_safe: bool = True
    device: str | None = None
    # The dtype used when the user's setting is "auto", on every device (CPU included); None: the usual rule.
    preferred_dtype: str | None = None
    # Stream with diffusers' group offloading (blocks moved as groups) instead of accelerate's per-layer hooks.
    group_offload: bool = False

    @property
    def streamable(self) -> bool:
        """True when layer-by-layer streaming works: the SD parts (diffusers models and CLIP's text encoder).

        Detectors such as SAM, Grounding DINO and CLIPSeg read parameters and buffers outside
        `forward` (position embeddings, prompt encoders), which accelerate's streaming hooks
        leave on the meta device; they run on CPU instead when they do not fit.
        """
        return self.loader.startswith("diffusers:") or self.core or self.group_offload

    @property
    def weighted(self) -> bool:
        """True when the component has weights that move and count against budgets."""
        return self.kind == WEIGHTS


def _diffusers(sub: str | None) -> tuple[tuple[str, ...], ...]:
    prefix = f"{sub}/" if sub else ""
    weights = (f"{prefix}diffusion_pytorch_model.safetensors", f"{prefix}diffusion_pytorch_model.bin")
    return ((f"{prefix}config.json",), weights)


def _transformers(sub: str | None = None) -> tuple[tuple[str, ...], ...]:
    prefix = f"{sub}/" if sub else ""
    weights = (f"{prefix}model.safetensors", f"{prefix}pytorch_model.bin")
    return ((f"{prefix}config.json",), weights, (f"?{prefix}generation_config.json",))


_PROCESSOR_FILES: tuple[tuple[str, ...], ...] = (
    ("preprocessor_config.json", "processor_config.json"),
    ("?tokenizer*", "?vocab*", "?merges.txt", "?special_tokens_map.json", "?added_tokens.json", "?config.json"),
)


def _build() -> dict[str, ComponentSpec]:
    specs: list[ComponentSpec] = [
        ComponentSpec(
            "sd15.unet", "sd15", "diffusers:UNet2DConditionModel", "unet", files=_diffusers("unet"), core=True
        ),
        ComponentSpec(
            "sd15.text_encoder",
            "sd15",
            "transformers:CLIPTextModel",
            "text_encoder",
            files=_transformers("text_encoder"),
            core=True,
        ),
        ComponentSpec("sd15.vae", "sd15", "diffusers:AutoencoderKL", "vae", files=_diffusers("vae"), core=True),
        ComponentSpec("sd15.tokenizer", "sd15", "transformers:CLIPTokenizer", "tokenizer", AUX, (("tokenizer/*",),)),
        ComponentSpec(
            "sd15.scheduler", "sd15", "diffusers:", "scheduler", SCHEDULER, (("scheduler/scheduler_config.json",),)
        ),
        ComponentSpec(
            "sd15_inpaint.unet", "sd15_inpaint", "diffusers:UNet2DConditionModel", "unet", files=_diffusers("unet")
        ),
        ComponentSpec("pix2pix.unet", "pix2pix", "diffusers:UNet2DConditionModel", "unet", files=_diffusers("unet")),
        # The safety checker ships with some SD checkpoints only (SD 1.5 does, fine-tunes often not): its files are
        # optional, and vchat.tools.generation.safety runs it ("auto") only where they are present.
        ComponentSpec(
            "sd15.safety_checker",
            "sd15",
            "diffusers.pipelines.stable_diffusion.safety_checker:StableDiffusionSafetyChecker",
            "safety_checker",
            files=(("?safety_checker/config.json",), ("?safety_checker/model.safetensors", "?safety_checker/*.bin")),
        ),
        ComponentSpec(
            "sd15.feature_extractor",
            "sd15",
            "transformers:CLIPImageProcessor",
            "feature_extractor",
            AUX,
            (("?feature_extractor/preprocessor_config.json",),),
        ),
    ]
    specs += [ComponentSpec(key, key, "diffusers:ControlNetModel", files=_diffusers(None)) for key in CONTROLNETS]
    for key, model_class, processor_class, device, fp16_safe in (
        ("blip_caption", "BlipForConditionalGeneration", "BlipProcessor", None, True),
        ("blip_vqa", "BlipForQuestionAnswering", "BlipProcessor", None, True),
        ("clipseg", "CLIPSegForImageSegmentation", "CLIPSegProcessor", None, True),
        ("depth", "DPTForDepthEstimation", "DPTImageProcessor", "cpu", True),
        ("segmentation", "UperNetForSemanticSegmentation", "AutoImageProcessor", "cpu", True),
        # Grounding DINO's deformable attention and box maths lose boxes in fp16: keep it in fp32.
        ("grounding_dino", "GroundingDinoForObjectDetection", "AutoProcessor", None, False),
        ("sam", "SamModel", "SamProcessor", None, True),
        # The current tier's detectors: SAM 3 finds every instance of a named concept (boxes, scores, masks);
        # Depth Anything V2 gives relative inverse depth like MiDaS, so the depth ControlNet reads it as it is.
        ("sam3", "Sam3Model", "Sam3Processor", None, True),
        ("depth_anything", "DepthAnythingForDepthEstimation", "AutoImageProcessor", None, True),
    ):
        specs.append(
            ComponentSpec(
                key, key, f"transformers:{model_class}", files=_transformers(), device=device, fp16_safe=fp16_safe
            )
        )
        specs.append(
            ComponentSpec(f"{key}.processor", key, f"transformers:{processor_class}", kind=AUX, files=_PROCESSOR_FILES)
        )
    # The built-in planner (vchat.llm.local). bf16 everywhere by default: on CPU it was faster than fp32 here
    # (bf16 kernels on this CPU, half the memory traffic), and fp16 overflows in Qwen's activations.
    specs.append(
        ComponentSpec(
            "planner",
            "planner",
            "transformers:Qwen3_5ForConditionalGeneration",
            files=(
                ("config.json",),
                ("model*.safetensors",),
                ("?model.safetensors.index.json",),
                ("?generation_config.json",),
            ),
            preferred_dtype="bfloat16",
        )
    )
    specs.append(
        ComponentSpec(
            "planner.processor",
            "planner",
            "transformers:AutoProcessor",
            kind=AUX,
            files=(
                ("preprocessor_config.json", "processor_config.json"),
                ("tokenizer.json",),
                ("?tokenizer_config.json",),
                ("?chat_template.jinja", "?chat_template.json"),
                ("?video_preprocessor_config.json",),
                ("?vocab.json",),
                ("?merges.txt",),
            ),
        )
    )
    # controlnet_aux networks build their own fp32 input tensors, so they stay in fp32 (and on CPU by default).
    for name, loader, files in (
        ("hed", "controlnet_aux:HEDdetector", (("ControlNetHED.pth",),)),
        ("mlsd", "controlnet_aux:MLSDdetector", (("mlsd_large_512_fp32.pth",),)),
        (
            "openpose",
            "controlnet_aux:OpenposeDetector",
            (("body_pose_model.pth",), ("hand_pose_model.pth",), ("facenet.pth",)),
        ),
    ):
        specs.append(
            ComponentSpec(f"annotators.{name}", "annotators", loader, files=files, fp16_safe=False, device="cpu")
        )
    return {spec.key: spec for spec in specs}


COMPONENTS: dict[str, ComponentSpec] = _build()

# The shared Stable Diffusion base every SD view needs besides its UNet (and ControlNet).
SD_SHARED = ("sd15.text_encoder", "sd15.vae", "sd15.tokenizer", "sd15.scheduler")


def component(key: str) -> ComponentSpec:
    """The spec of a component key; unknown keys raise KeyError naming the known ones."""
    try:
        return COMPONENTS[key]
    except KeyError:
        raise KeyError(f"unknown model component {key!r}; known: {', '.join(sorted(COMPONENTS))}") from None


def components_of(model_key: str) -> list[ComponentSpec]:
    """Every component that comes from one model key."""
    return [spec for spec in COMPONENTS.values() if spec.model == model_key]


def expand_keys(keys: list[str] | tuple[str, ...]) -> list[ComponentSpec]:
    """Component specs for a mix of model keys (`sd15`) and component keys (`sd15.unet`), in order, no repeats."""
    out: dict[str, ComponentSpec] = {}
    for key in keys:
        # A model key first: `sam` is both the model and its network's component, and pulling the model must
        # bring its processor too.
        if key in DEFAULT_MODELS:
            out.update({spec.key: spec for spec in components_of(key)})
        elif key in COMPONENTS:
            out[key] = COMPONENTS[key]
        else:
            known = ", ".join(DEFAULT_MODELS)
            raise KeyError(f"unknown model {key!r}; known: {known}")
    return list(out.values())


# ----- FLUX.2 [klein] 4B: the current tier's generation and editing model (vchat.runtime.klein runs it) -----------

KLEIN = "flux2_klein"
KLEIN_ID = "black-forest-labs/FLUX.2-klein-4B"
KLEIN_TRANSFORMER, KLEIN_TEXT_ENCODER, KLEIN_VAE = f"{KLEIN}.transformer", f"{KLEIN}.text_encoder", f"{KLEIN}.vae"
KLEIN_TOKENIZER, KLEIN_SCHEDULER = f"{KLEIN}.tokenizer", f"{KLEIN}.scheduler"
# Every component a klein tool may lock (the two phases of a call lock a part each; see vchat.runtime.klein).
KLEIN_SHARED = (KLEIN_TRANSFORMER, KLEIN_VAE, KLEIN_SCHEDULER, KLEIN_TEXT_ENCODER, KLEIN_TOKENIZER)


def _sharded(sub: str, stem: str) -> tuple[tuple[str, ...], ...]:
    # Checkpoints this size are sharded (`…-00001-of-00002.safetensors` plus an index); small ones are one file.
    weights = (f"{sub}/{stem}*.safetensors", f"{sub}/{stem}*.bin")
    return ((f"{sub}/config.json",), weights, (f"?{sub}/{stem}.safetensors.index.json",))


def klein_specs() -> list[ComponentSpec]:
    """klein's components; bf16 by default on every device (fp16 overflows in FLUX, and CPUs have bf16 kernels).

    When the transformer or the text encoder does not fit the device budget even alone, it streams through
    diffusers' group offloading (its blocks, or Qwen3's layers, move to the device one at a time), which also lets
    the text encoder stream instead of falling back to CPU. The VAE (0.17 GB) streams like the SD parts if ever.
    """
    return [
        ComponentSpec(
            KLEIN_TRANSFORMER,
            KLEIN,
            "diffusers:Flux2Transformer2DModel",
            "transformer",
            files=_sharded("transformer", "diffusion_pytorch_model"),
            preferred_dtype="bfloat16",
            group_offload=True,
        ),
        ComponentSpec(
            KLEIN_TEXT_ENCODER,
            KLEIN,
            "transformers:Qwen3ForCausalLM",
            "text_encoder",
            files=(*_sharded("text_encoder", "model"), ("?text_encoder/generation_config.json",)),
            preferred_dtype="bfloat16",
            group_offload=True,
        ),
        ComponentSpec(
            KLEIN_VAE,
            KLEIN,
            "diffusers:AutoencoderKLFlux2",
            "vae",
            files=_sharded("vae", "diffusion_pytorch_model"),
            preferred_dtype="bfloat16",
        ),
        ComponentSpec(KLEIN_TOKENIZER, KLEIN, "transformers:Qwen2TokenizerFast", "tokenizer", AUX, (("tokenizer/*",),)),
        ComponentSpec(
            KLEIN_SCHEDULER, KLEIN, "diffusers:", "scheduler", SCHEDULER, (("scheduler/scheduler_config.json",),)
        ),
    ]


DEFAULT_MODELS.setdefault(KLEIN, KLEIN_ID)
COMPONENTS.update({spec.key: spec for spec in klein_specs()})
