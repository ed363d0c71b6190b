"""Online trackers sharing one protocol: ``init(frame, box)`` then ``update(frame)`` per frame."""
