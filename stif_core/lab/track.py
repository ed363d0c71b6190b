"""Track a video of one's own: ``python -m stif_core track VIDEO --box x,y,w,h``.

Frames stream from the video (``data.video.FrameSource``) through a STIF tracker that keeps each step's internals;
each frame's row is written as soon as it is tracked, so an interrupted or failed run keeps what it did and says
so in ``track.json``. Files in the output folder:

- ``boxes.txt``: one ``x,y,w,h`` line per frame, frame 0's the given box (an OTB result file);
- ``frames.csv``: per frame its time stamp, box, peak score, the memory's frame indices and temporal weights,
  the two gates' means, and the q2m attention's entropy (over its maximum) and mass on the target
  (``tracking.readout``; the target is the tracker's own box); ``pandas.read_csv`` reads it;
- ``track.mp4``: the video with the box and (``overlays``, the default) where the query reads the memory's target (the
  q2m read map over the search region), SDE's query map xi_2 (top right) and the temporal weights (bottom left);
- ``track.json``: the run: input, model, frames tracked, ``complete`` (false while running, after an error or
  an interruption, and when the video's tail could not be decoded), speed and memory.
"""
from __future__ import annotations

import csv
import json
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np

from ..data.crops import xywh_to_xyxy
from ..data.sequences import check_box_scale, data_roots
from ..data.video import FrameSource, check_video, video_writer
from ..files import (
    atomic,
    check_name,
    checked_target,
    json_object,
    output_folder,
    outside_data,
    unaccounted,
    write_text,
    writing,
)
from ..options import plain_float
from ..paths import output_root
from ..tracking.memory import make_memory
from ..tracking.protocol import check_init_box
from ..tracking.readout import step_readout
from ..tracking.tracker import STIFTracker
from .bench import rss_mib

FLUSH_EVERY = 25  # frames between flushes of the text outputs
RSS_EVERY = 500  # frames between two resident-memory readings kept in track.json


def parse_box(text: str) -> np.ndarray:
    """``"x,y,w,h"`` -> (4,) float64; a clear error for anything else."""
    try:
        box = np.array([plain_float(v) for v in text.split(",")])
    except ValueError:
        box = np.zeros(0)
    if box.shape != (4,):
        raise ValueError(f"--box {text!r}: give four numbers x,y,w,h (the target's top-left corner and size in "
                         "pixels of the first frame), e.g. --box 120,80,40,90")
    return box


def draw_box(first: np.ndarray) -> np.ndarray:
    """The first box drawn with OpenCV's ROI selector, where a display and a GUI build of OpenCV exist."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ValueError("no --box given and no display to draw it on: pass --box x,y,w,h")
    try:
        x, y, w, h = cv2.selectROI("STIF: draw the target, then Enter", cv2.cvtColor(first, cv2.COLOR_RGB2BGR))
        cv2.destroyAllWindows()
    except cv2.error:
        raise ValueError("no --box given, and this OpenCV has no window support to draw one (a headless build): "
                         "pass --box x,y,w,h") from None
    if w == 0 or h == 0:
        raise ValueError("no box was drawn: pass --box x,y,w,h")
    return np.array([x, y, w, h], dtype=np.float64)


def columns(memory: int) -> list[str]:
    return (["frame", "time_s", "x", "y", "w", "h", "peak_score"] + [f"memory_{k}" for k in range(memory)]
            + [f"weight_{k}" for k in range(memory)]
            + ["gate_memory", "gate_query", "attention_entropy", "attention_mass", "attention_uniform"])


def frame_row(index: int, time_s: float, box: np.ndarray, look=None, reading: dict | None = None) -> dict:
    """The CSV row of one frame: its box, and for a tracked frame its step's memory and numbers."""
    row = {"frame": index, "time_s": round(time_s, 4), **dict(zip("xywh", np.round(box, 2)))}
    if look is None:
        return row
    reading = dict(reading)
    for k, entry in enumerate(look.entries):
        row[f"memory_{k}"] = entry.frame
    for k, w in enumerate(reading.pop("temporal_weights", [])):
        row[f"weight_{k}"] = round(float(w), 5)
    return row | {k: round(v, 5) for k, v in reading.items()}


def heat_levels(heat: np.ndarray, size: tuple[int, int], top: float | None = None) -> np.ndarray:
    """(H, W) map >= 0 -> uint8 levels resized to ``size`` (W, H), 255 at ``top`` (None: the map's maximum)."""
    scaled = np.clip(heat / max(float(heat.max()) if top is None else top, 1e-6), 0, 1)
    return cv2.resize((scaled * 255).astype(np.uint8), size, interpolation=cv2.INTER_LINEAR)


def paste_heat(canvas: np.ndarray, heat: np.ndarray, rect: np.ndarray, alpha: float = 0.7) -> None:
    """Blend ``heat`` in viridis over ``canvas`` (BGR) inside ``rect`` (frame x1, y1, x2, y2), each pixel's opacity
    ``alpha`` times its level, so that the frame shows through where the map is low."""
    x1, y1, x2, y2 = np.round(rect).astype(int)
    h, w = canvas.shape[:2]
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if x2 - x1 < 2 or y2 - y1 < 2 or cx2 <= cx1 or cy2 <= cy1:
        return
    levels = heat_levels(heat, (x2 - x1, y2 - y1))[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1]  # (h', w')
    colour = cv2.applyColorMap(levels, cv2.COLORMAP_VIRIDIS).astype(np.float32)  # (h', w', 3)
    a = levels[..., None].astype(np.float32) * (alpha / 255)  # (h', w', 1)
    part = canvas[cy1:cy2, cx1:cx2].astype(np.float32)
    canvas[cy1:cy2, cx1:cx2] = (part * (1 - a) + colour * a).astype(np.uint8)


def grid_extent(model) -> np.ndarray:
    """The score grid's extent in crop pixels, x1, y1, x2, y2: where the maps of a step lie in its crop."""
    n, stride, offset = model.cfg.score_size, model.cfg.stride, float(model.centers[0, 0])
    lo, hi = offset - stride / 2, offset + (n - 0.5) * stride
    return np.array([lo, lo, hi, hi])


def draw_frame(image: np.ndarray, index: int, box: np.ndarray, look=None, reading: dict | None = None,
               maps: dict | None = None, grid: np.ndarray | None = None) -> np.ndarray:
    """One frame of ``track.mp4`` (BGR): the box and its step's score, and with ``maps`` (overlays on) the maps
    over the crop's ``grid`` and the temporal weights."""
    canvas = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    h, w = canvas.shape[:2]
    size = max(0.4, h / 600)  # text scale: legible at 240p and at 1080p
    overlays, maps = maps is not None, maps or {}
    if "read" in maps:
        paste_heat(canvas, maps["read"], look.window.to_frame(grid))
    side = max(h // 4, 24)
    if "query_map" in maps:
        levels = heat_levels(maps["query_map"], (side, side), 1.0)
        canvas[4:4 + side, w - side - 4:w - 4] = cv2.applyColorMap(levels, cv2.COLORMAP_VIRIDIS)
        bar = max(side // 12, 4)  # its colour scale, 1 at the top, 0 at the bottom, left of it
        if w > side + bar + 40:
            ramp = np.linspace(255, 0, side).astype(np.uint8)[:, None].repeat(bar, 1)  # (side, bar)
            canvas[4:4 + side, w - side - 8 - bar:w - side - 8] = cv2.applyColorMap(ramp, cv2.COLORMAP_VIRIDIS)
            for text, y in (("1", 4 + int(12 * size)), ("0", 4 + side)):
                (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.75 * size, 1)
                cv2.putText(canvas, text, (w - side - 10 - bar - tw, y), cv2.FONT_HERSHEY_SIMPLEX, 0.75 * size,
                            (255, 255, 255), 1, cv2.LINE_AA)
        label = "SDE xi_2"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, size, 1)
        cv2.putText(canvas, label, (w - tw - 4, side + th + 8), cv2.FONT_HERSHEY_SIMPLEX, size, (255, 255, 255), 1,
                    cv2.LINE_AA)
    if overlays and "temporal_weights" in (reading or {}):
        values = reading["temporal_weights"]
        bar_w, top = max(side // max(len(values), 1), 6), h - 6
        cv2.putText(canvas, "temporal weights", (6, top - side - 14), cv2.FONT_HERSHEY_SIMPLEX, size,
                    (255, 255, 255), 1, cv2.LINE_AA)
        for k, (v, e) in enumerate(zip(values, look.entries)):
            x = 6 + k * bar_w
            cv2.rectangle(canvas, (x, top - int(v * side)), (x + bar_w - 2, top), (80, 200, 255), -1)
            cv2.putText(canvas, str(e.frame), (x, top - int(v * side) - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.75 * size,
                        (255, 255, 255), 1, cv2.LINE_AA)
    x1, y1, x2, y2 = np.round(xywh_to_xyxy(box)).astype(int)
    cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 255, 0), 2)
    label = f"#{index}" + (f"  score {float(look.selection.score):.2f}" if look is not None else "")
    cv2.putText(canvas, label, (6, int(18 + 20 * (size - 0.4))), cv2.FONT_HERSHEY_SIMPLEX, size, (255, 255, 255), 1,
                cv2.LINE_AA)
    return canvas


def track_video(source: FrameSource, box: np.ndarray, tracker: STIFTracker, out: Path, overlays: bool = True,
                progress: bool = True, describe: dict | None = None) -> dict:
    """Track ``source`` from ``box`` (x, y, w, h in the first frame) into the output folder ``out``; returns
    ``track.json``'s content. The files are renamed into place when the run ends, ``track.json`` last, so the four
    always come from one run; a run that stops keeps its frames too, in ``out/partial/`` when ``out`` holds an
    earlier complete run."""
    box = check_init_box(check_box_scale(box, source.size, "--box"), (source.size[1], source.size[0]))
    outside_inputs(out, source, around_input=False)
    with output_folder(out, "track") as out:
        earlier = json_object(out / "track.json")  # the video of an earlier run, whether it tracked all of it
        if isinstance(earlier.get("video"), str) and Path(earlier["video"]).resolve() != source.path.resolve():
            raise ValueError(f"{out} holds the run of another video, {earlier['video']}: give another --out (two "
                             "videos of one name share the default folder)")
        setup = {"first_box": box.tolist(), **(describe or {})}  # what else makes a run's boxes
        changed = [k for k in setup if earlier and earlier.get(k) != setup[k]]
        if changed:
            raise ValueError(f"{out} holds a run of this video with another set-up ("
                             + ", ".join(f"{k} {earlier.get(k)!r}, now {setup[k]!r}" for k in changed)
                             + "): give another --out, or delete that folder to track again")
        keep = out / "partial" if earlier.get("complete") is True else out  # where a stopped run's files go
        # out's manifest lists what an earlier stopped run kept in partial/: only other files there are a user's
        if keep != out and keep.exists() and any(Path(p).parts[0] == keep.name for p in unaccounted(out)):
            raise ValueError(f"{keep} holds files this package did not write, where a stopped run would keep its "
                             "frames: move them away")
        for name in ("boxes.txt", "frames.csv", "track.mp4", "track.json"):  # a planted link: refused before tracking
            checked_target(out / name)
        summary = {"video": str(source.path), "size": list(source.size), "fps": source.fps,
                   "frames_announced": source.announced, "first_box": box.tolist(), **(describe or {}),
                   "complete": False, "frames_tracked": 0, "stopped": "running", "rss_mib": {}}
        try:
            with ExitStack() as files:
                boxes, table, video = (files.enter_context(atomic(out / name, on_error=keep / name))
                                       for name in ("boxes.txt", "frames.csv", "track.mp4"))
                with writing(f"{out}/boxes.txt, frames.csv or track.mp4", kept="what was tracked is kept, partial"):
                    write_frames(source, box, tracker, boxes, table, video, overlays, progress, summary,
                                 out / "track.mp4")
                check_video(video, summary["frames_tracked"], out / "track.mp4")  # OpenCV reports no failed write
        except BaseException as err:  # an error or an interruption: what was tracked is kept, marked partial
            summary["complete"] = False
            summary["stopped"] = (f"interrupted ({str(err) or 'Ctrl-C'})" if isinstance(err, KeyboardInterrupt)
                                  else f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
            for name, header in (("boxes.txt", 0), ("frames.csv", 1)):
                whole_rows(keep / name, summary["frames_tracked"] + header)
            write_status(keep / "track.json", summary)
            if keep != out:
                print(f"{out} keeps its earlier complete run; this stopped run's frames are in {keep}",
                      file=sys.stderr, flush=True)
            raise
        write_status(out / "track.json", summary)
    return summary


def default_folder(source: FrameSource) -> Path:
    """``runs/track/<name>`` under the output root: a folder of frames by its own name (``.`` too), a video by its
    name without the suffix, leading dots dropped (``.clip.mp4`` makes no hidden folder)."""
    path = source.path.resolve()
    name = (path.name if source.paths is not None else path.stem).lstrip(".")
    return output_root() / "runs" / "track" / check_name(name, "the video's name (or give --out)")


def outside_inputs(out: str | Path, source: FrameSource, around_input: bool = True) -> None:
    """``ValueError`` when ``out`` lies in a data root (``data_roots``: the default one, or one the input lies in),
    as every command refuses, or (``around_input``: the command's check; a notebook may track a clip the package
    wrote into the run's folder) when the input lies inside ``out``."""
    if around_input and Path(out).resolve() in source.path.resolve().parents:
        raise ValueError(f"the video {source.path} lies inside --out {out}, which the run writes: give another --out")
    for root in data_roots(source.path):
        outside_data(out, root, "--out")


def whole_rows(path: Path, rows: int) -> None:
    """Cut a stopped run's text file after its first ``rows`` whole lines: a write that failed midway (a full disk,
    ``ulimit -f``) leaves a cut last row, and a row of a frame that was not tracked to the end."""
    if not path.is_file():
        return
    with open(checked_target(path), "r+b") as f:
        kept = 0
        for _ in range(rows):
            line = f.readline()
            if not line.endswith(b"\n"):
                break
            kept += len(line)
        f.truncate(kept)


def write_status(path: Path, summary: dict) -> None:
    """``track.json`` atomically, else (a full disk has no room for the temporary file) rewritten in place."""
    text = json.dumps(summary, indent=2)
    try:
        write_text(path, text)
    except OSError:
        path = checked_target(path)
        try:
            with open(path, "w", encoding="utf-8") as status:
                status.write(text)
        except OSError:  # no room at all: no track.json rather than an empty or cut one
            path.unlink(missing_ok=True)
            raise


def write_frames(source: FrameSource, box: np.ndarray, tracker: STIFTracker, boxes_path: Path, table_path: Path,
                 video_path: Path, overlays: bool, progress: bool, summary: dict, video_name: Path) -> None:
    """The tracking loop of ``track_video``: each frame's box, CSV row and video frame written as it is tracked;
    ``summary`` updated as it goes (frames, speed, memory) and on the way out."""
    from tqdm.auto import tqdm

    tracker.keep_internals = True
    memory = make_memory(tracker.policy, tracker.t).most
    centers, stride, grid = tracker.model.centers.cpu(), tracker.model.cfg.stride, grid_extent(tracker.model)
    start, n = time.perf_counter(), 0
    with open(boxes_path, "w") as boxes, open(table_path, "w", newline="") as table:
        writer = csv.DictWriter(table, columns(memory), restval="")
        writer.writeheader()
        video = video_writer(video_path, source.fps, source.size, video_name)
        bar = tqdm(total=source.announced, desc="track", unit="frame", disable=not progress)
        try:
            for frame in source:
                look, reading, maps = None, None, None
                if frame.index == 0:
                    tracker.init(frame.image, box)
                    current = box
                else:
                    current = tracker.update(frame.image).box
                    look = tracker.last
                    target = look.window.to_crop(xywh_to_xyxy(current))  # the tracker's box in its query crop
                    reading, maps = step_readout(look, centers, stride, target)
                boxes.write(",".join(f"{v:.2f}" for v in current) + "\n")
                writer.writerow(frame_row(frame.index, frame.time, current, look, reading))
                video.write(draw_frame(frame.image, frame.index, current, look, reading, maps if overlays else None,
                                       grid))
                n = frame.index + 1
                if n % FLUSH_EVERY == 0:
                    boxes.flush()
                    table.flush()
                if n % RSS_EVERY == 0 or n == 1:
                    summary["rss_mib"][str(n)] = round(rss_mib(), 1)
                    bar.set_postfix(rss_mib=summary["rss_mib"][str(n)])
                bar.update()
            summary["stopped"] = source.stopped
            summary["complete"] = source.stopped is None
        finally:
            bar.close()
            video.release()
            seconds = time.perf_counter() - start
            summary |= {"frames_tracked": n, "seconds": round(seconds, 2),
                        "frames_per_second": round(n / seconds, 2) if seconds > 0 else None}
            summary["rss_mib"][str(n)] = round(rss_mib(), 1)


def box_widget(first: np.ndarray, box: np.ndarray | None):
    """A ``jupyter_bbox_widget.BBoxWidget`` on the first frame (PNG bytes: no path lands in the saved notebook) to
    draw the target's box with the mouse, starting with ``box`` (x, y, w, h) when given."""
    from jupyter_bbox_widget import BBoxWidget

    ok, png = cv2.imencode(".png", cv2.cvtColor(first, cv2.COLOR_RGB2BGR))
    boxes = [] if box is None else [dict(zip(("x", "y", "width", "height"), np.round(box).astype(int).tolist()),
                                         label="target")]
    return BBoxWidget(image_bytes=png.tobytes(), classes=["target"], bboxes=boxes, hide_buttons=True)


def drawn_box(widget, default: np.ndarray | None) -> np.ndarray:
    """The last box drawn in ``widget`` as (4,) x, y, w, h, else ``default``; an error when there is neither."""
    if widget.bboxes:
        b = widget.bboxes[-1]
        return np.array([b["x"], b["y"], b["width"], b["height"]], dtype=np.float64)
    if default is None:
        raise ValueError("no box: draw the target on the first frame above, or set the parameter box='x,y,w,h'")
    return np.asarray(default, dtype=np.float64)


def video_frame(path: str | Path, index: int) -> np.ndarray:
    """Frame ``index`` of a video file as (H, W, 3) uint8 RGB (a seek: for scrubbing, not for streaming)."""
    capture = cv2.VideoCapture(str(path))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = capture.read()
    finally:
        capture.release()
    if not ok:
        raise ValueError(f"{path} has no frame {index}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def internals_figure(table, iou: np.ndarray | None = None, mark: int | None = None):
    """``frames.csv`` (a DataFrame) over time in four panels: peak score (and the IoU with a ground truth), the
    temporal weights of the memory's slots stacked, the two gates' means, and the q2m attention's entropy and mass
    on the target; ``mark``: a frame to draw a vertical line at."""
    import matplotlib.pyplot as plt

    t = table.iloc[1:]  # frame 0 is the given box: no step, no internals
    fig, axes = plt.subplots(4, 1, figsize=(10, 8.5), sharex=True)
    axes[0].plot(t["frame"], t["peak_score"], label="peak score")
    if iou is not None:
        axes[0].plot(np.arange(len(iou))[1:], iou[1:], label="IoU with the ground truth")
    weights = t.filter(like="weight_").fillna(0).to_numpy().T  # (slots, L - 1)
    if weights.size:
        axes[1].stackplot(t["frame"], weights, labels=[f"slot {k}" for k in range(len(weights))],
                          colors=plt.cm.viridis(np.linspace(0, 0.9, len(weights))))
    for name in ("gate_memory", "gate_query"):
        if name in t and t[name].notna().any():
            axes[2].plot(t["frame"], t[name], label=name.replace("_", " "))
    for name, style in (("attention_entropy", "-"), ("attention_mass", "-"), ("attention_uniform", ":")):
        if name in t and t[name].notna().any():
            axes[3].plot(t["frame"], t[name], style, label=name.replace("_", " "))
    titles = ("score", "temporal weights (eq. 3), stacked by memory slot", "gate means (the gating unit of eqs. 9-10)",
              "q2m attention of the query cells in the box (eq. 9)")
    for ax, title in zip(axes, titles):
        ax.set(title=title, ylim=(0, 1.02))
        if ax.has_data():
            ax.legend(loc="upper right", fontsize=7, ncol=3)
        else:
            ax.text(0.5, 0.5, "not in this variant", transform=ax.transAxes, ha="center", va="center")
        if mark is not None:
            ax.axvline(mark, color="black", lw=0.8)
    axes[-1].set_xlabel("frame")
    fig.tight_layout()
    return fig
