"""Images are whole at once, synced to disk off the caller's path, always before the transcript naming them."""

from __future__ import annotations

import errno
import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.helpers import make_session, write_photo

import vchat.store.images as images_module
from vchat.config import ConfigError, load_settings
from vchat.errors import VchatError
from vchat.resume import resume_session
from vchat.store.files import encode_png, is_whole_png
from vchat.store.transcript import TRANSCRIPT_NAME, Transcript
from vchat.tools.registry import all_tools


def _watch_syncs(monkeypatch: pytest.MonkeyPatch, root: Path, hold: threading.Event | None = None) -> list[str]:
    """Record every disk sync under `root` in order: `file NAME`, `folder`, `transcript`; file syncs wait for `hold`.

    Syncs of other folders (an earlier test's session whose sync thread is still draining) are not this test's.
    """
    events: list[str] = []
    real_file, real_folder, real_transcript = images_module.sync_file, images_module.sync_folder, Transcript.sync

    def ours(path: Path) -> bool:
        return Path(path).resolve().is_relative_to(root.resolve())

    def sync_file(path: Path) -> None:
        if ours(path):
            if hold is not None:
                assert hold.wait(20), "the test never released the sync"
            events.append(f"file {Path(path).name}")
        real_file(path)

    def sync_folder(folder: Path) -> None:
        if ours(folder):
            events.append("folder")
        real_folder(folder)

    def sync_transcript(self: Transcript) -> None:
        if ours(self.path):
            events.append("transcript")
        real_transcript(self)

    monkeypatch.setattr(images_module, "sync_file", sync_file)
    monkeypatch.setattr(images_module, "sync_folder", sync_folder)
    monkeypatch.setattr(Transcript, "sync", sync_transcript)
    return events


def test_run_tool_returns_before_the_disk_sync_and_commits_images_before_the_transcript(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = threading.Event()
    events = _watch_syncs(monkeypatch, tmp_path, hold)
    session = make_session(tmp_path)
    session.attach(write_photo(tmp_path))
    step = session.run_tool("flip_image", named={"image": "img1"})
    # The tool call came back while no sync had finished: the output is already whole under its name
    # and its step is recorded (what a killed process needs); nothing is forced to disk yet.
    out = step.images[0].path
    assert is_whole_png(out) and out.name == "img2-flip_image.png"
    assert '"kind": "observation"' in (session.folder / TRANSCRIPT_NAME).read_text()
    assert events == []
    hold.set()
    session.close()
    # In order on the sync thread: both files, then the folder entries, then the transcript naming them.
    assert events[:4] == ["file img1.png", "file img2-flip_image.png", "folder", "transcript"]


def test_a_turn_commits_after_its_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import act, answer

    events = _watch_syncs(monkeypatch, tmp_path)
    session = make_session(tmp_path, [act("canny_edges", "img1"), act("flip_image", "img2"), answer("done: img3")])
    session.attach(write_photo(tmp_path))
    steps = list(session.turn("edges, then flip them"))
    assert steps[-1].kind == "final"
    session.close()
    last_file = max(i for i, event in enumerate(events) if event.startswith("file "))
    first_transcript = events.index("transcript")
    assert first_transcript > last_file and "folder" in events[last_file:first_transcript]
    assert {e for e in events if e.startswith("file ")} == {
        "file img1.png",
        "file img2-canny_edges.png",
        "file img3-flip_image.png",
    }


def test_a_failed_image_sync_commits_nothing_and_close_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = _watch_syncs(monkeypatch, tmp_path)

    def broken(path: Path) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(images_module, "sync_file", broken)
    session = make_session(tmp_path)
    session.attach(write_photo(tmp_path))
    session.run_tool("flip_image", named={"image": "img1"})
    with pytest.raises(VchatError, match=r"^could not sync img1 to disk: Input/output error$"):
        session.close()
    assert "transcript" not in events  # a transcript naming images that may not be on disk is not committed
    # The session is closed all the same (its lock released): it can be resumed.
    monkeypatch.undo()
    again, _ = resume_session(session.settings, all_tools(), None, session.id)
    again.close()


def test_resume_treats_an_image_cut_short_as_missing(tmp_path: Path) -> None:
    # What a power loss between an image's write and its sync may leave: the transcript names it,
    # the file is there but incomplete. It is reported, never offered to the model as an image.
    session = make_session(tmp_path)
    session.attach(write_photo(tmp_path))
    step = session.run_tool("flip_image", named={"image": "img1"})
    session.close()
    out = step.images[0].path
    out.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    resumed, warning = resume_session(session.settings, all_tools(), None, session.id)
    try:
        assert warning is not None and "img2 missing" in warning
        assert [ref.handle for ref in resumed.store] == ["img1"]
        again = resumed.run_tool("flip_image", named={"image": "img1"})
        assert again.images[0].handle == "img3"  # the number of the damaged image is not handed out again
    finally:
        resumed.close()


def _photo_like(side: int = 96) -> Image.Image:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:side, 0:side]
    base = np.stack([x * 2, y * 2, (x + y)], axis=-1) % 256
    noisy = base + rng.integers(0, 12, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_fast_and_small_png_keep_every_pixel_and_small_is_smaller_for_colour(mode: str) -> None:
    image = _photo_like().convert(mode)
    fast, small = encode_png(image, {"a": 1}, "fast"), encode_png(image, {"a": 1}, "small")
    if mode == "RGB":  # one-channel maps: zlib's run-length strategy in "fast" is often as small
        assert len(small) < len(fast)
    for data in (fast, small):
        back = Image.open(io.BytesIO(data))
        assert back.mode == mode and np.array_equal(np.asarray(back), np.asarray(image))


def test_png_compression_setting(tmp_path: Path) -> None:
    assert load_settings(env={"VCHAT_PNG_COMPRESSION": "small"}, config_path=None).png_compression == "small"
    with pytest.raises(ConfigError, match="png_compression must be fast or small"):
        load_settings(env={"VCHAT_PNG_COMPRESSION": "best"})
    session = make_session(tmp_path, png_compression="small")
    assert session.store.png == "small"
    assert make_session(tmp_path).store.png == "fast"  # the default: encoding sits on every tool's path
