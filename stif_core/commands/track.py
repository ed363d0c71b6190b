"""``python -m stif_core track VIDEO --box x,y,w,h``: one's own video tracked, frame by frame, with its internals
(``lab.track``)."""
from __future__ import annotations

RESUME = ("the frames tracked before the stop, if any, are in --out, or in --out/partial when --out holds an earlier "
          "complete run (track.json says complete: false); run again to track it all")


def register(sub) -> None:
    from ..config import MAX_CROP_SIZE
    from ..options import MAX_FPS, MIN_FPS, bounded_float, bounded_int

    p = sub.add_parser("track", help="track a video file or a folder of frames from a first box; writes boxes, "
                                     "per-frame internals and a video with the box")
    p.add_argument("video", help="a video file (MP4, AVI, MOV, MKV, WebM: what OpenCV decodes) or a folder of frames")
    p.add_argument("--box", help="the target in the first frame: x,y,w,h in pixels (without it, and with a "
                                 "display, OpenCV asks you to draw it); a box starting at a negative x is written "
                                 "--box=-10,5,40,60")
    p.add_argument("--checkpoint", default="stif_lite_full", help="weights: a file or a shipped model's name")
    p.add_argument("--engine", default="onnx", choices=["torch", "onnx"],
                   help="where the network runs; the box is this engine's, as in eval (the internals come from a "
                        "second pass of the step in PyTorch)")
    p.add_argument("--memory-policy", help="recent or stmtrack (default: the tracker's)")
    p.add_argument("--search-size", type=bounded_int(1, MAX_CROP_SIZE),
                   help=f"the search crop's side in pixels (see eval; at most {MAX_CROP_SIZE})")
    p.add_argument("--no-overlays", dest="overlays", action="store_false",
                   help="draw only the box into track.mp4, not the q2m read map, SDE's query map and the temporal "
                        "weights (they cost less than the run-to-run noise on this project's 2-core machine)")
    p.add_argument("--fps", type=bounded_float(MIN_FPS, MAX_FPS),
                   help=f"frame rate of a folder of frames (default 30; {MIN_FPS} to {MAX_FPS}); a video keeps its own")
    p.add_argument("--out", help="output folder (default: runs/track/<video name>)")
    p.set_defaults(run=run)


def run(args) -> int:
    import sys

    from ..checkpoint import load_model
    from ..data.sequences import check_box_scale
    from ..data.video import FOLDER_FPS, FrameSource
    from ..lab.track import default_folder, draw_box, outside_inputs, parse_box, track_video
    from ..paths import checkpoint_path
    from ..tracking.memory import DEFAULT_MEMORY_POLICY
    from ..tracking.protocol import check_init_box
    from ..tracking.tracker import STIFTracker

    source = FrameSource(args.video, fps=args.fps or FOLDER_FPS)  # a missing, empty or undecodable video fails here
    if args.fps and source.paths is None:
        print(f"note: --fps is for a folder of frames; the video keeps its own rate, {source.fps:g} frames/s",
              file=sys.stderr)
    out = args.out or default_folder(source)
    outside_inputs(out, source)  # neither in the data nor around the video, before any folder is made
    box = parse_box(args.box) if args.box else draw_box(next(iter(source)).image)
    box = check_init_box(check_box_scale(box, source.size, "--box"), (source.size[1], source.size[0]))  # a box
    # off the first frame, or over 4 times its size (eval's rule for ground truth), fails before any file
    policy = args.memory_policy or DEFAULT_MEMORY_POLICY
    model = load_model(args.checkpoint)
    tracker = STIFTracker(model, memory_policy=policy, engine=args.engine, search_size=args.search_size)
    summary = track_video(source, box, tracker, out, overlays=args.overlays,
                          describe={"checkpoint": str(checkpoint_path(args.checkpoint)), "engine": args.engine,
                                    "memory_policy": policy, "overlays": args.overlays})
    state = "complete" if summary["complete"] else f"PARTIAL ({summary['stopped']})"
    print(f"tracked {summary['frames_tracked']} frames of {source.path} at {summary['frames_per_second']} "
          f"frames/s (decode, track, internals, video); {state}")
    print(f"written to {out}: boxes.txt, frames.csv, track.mp4, track.json")
    return 0 if summary["complete"] else 1
