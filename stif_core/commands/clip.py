"""``python -m stif_core clip SEQUENCE OUT.mp4``: a sequence of the data root written as a video file, to try
``track`` on."""
from __future__ import annotations

RESUME = "the video is written whole at the end: no file was written, and an earlier one at that name is kept"


def register(sub) -> None:
    from ..options import MAX_FPS, MAX_STEPS, MIN_FPS, bounded_float, positive_int

    p = sub.add_parser("clip", help="write a sequence of the data root as an MP4 video (and print its first box)")
    p.add_argument("sequence", help="a sequence name, e.g. crossing")
    p.add_argument("out", help="the video file to write (.mp4)")
    p.add_argument("--frames", type=positive_int(MAX_STEPS),
                   help=f"only the first frames (default: all; at most {MAX_STEPS})")
    p.add_argument("--fps", type=bounded_float(MIN_FPS, MAX_FPS), default=30.0,
                   help=f"the video's frame rate (default 30; {MIN_FPS} to {MAX_FPS})")
    p.add_argument("--data-root", help="sequences folder")
    p.add_argument("--replace", action="store_true", help="replace OUT when it exists (without it, an existing file "
                                                          "is never touched)")
    p.set_defaults(run=run)


def run(args) -> None:
    from ..data.sequences import load_sequences, resolve_root
    from ..data.video import sequence_video
    from ..files import outside_data, writable_file

    outside_data(args.out, resolve_root(args.data_root), "the video file")  # before any folder is made
    out = writable_file(args.out, "the video file")
    if out.suffix.lower() != ".mp4":
        raise ValueError(f"the video file {out} must end in .mp4 (the one format clip writes)")
    if out.exists() and not args.replace:
        raise ValueError(f"the video file {out} exists; clip never replaces a file unless asked: give another name, "
                         "or --replace")
    seq = load_sequences([args.sequence], args.data_root)[0]
    path = sequence_video(seq, out, args.fps, args.frames)
    x, y, w, h = seq.boxes[0]
    print(f"wrote {path}; its first box: --box {x:g},{y:g},{w:g},{h:g}")
